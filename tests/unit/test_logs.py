import json
import logging
import sys

from asterisk_cb.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("asterisk_cb.test")
    made = logger.makeRecord(
        "asterisk_cb.test", logging.WARNING, __file__, 1, "lease lost for %s", ("cb1",), None
    )
    made.__dict__.update(extra)
    return made


def test_a_record_is_one_json_line_with_its_context() -> None:
    line = JsonFormatter().format(record(callback="cb1", component="scheduler"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == "lease lost for cb1"
    assert entry["level"] == "warning"
    assert entry["logger"] == "asterisk_cb.test"
    assert entry["callback"] == "cb1"
    assert entry["component"] == "scheduler"
    assert entry["ts"].endswith("+00:00")


def test_exceptions_stay_inside_the_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger = logging.getLogger("x")
        made = logger.makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(made))
    assert "RuntimeError: boom" in entry["exc"]
