"""[records]: good values load, bad ones name file, line and option, and a DSN's password never shows."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from config_texts import REQUIRED

from asterisk_cb import config, deployment
from asterisk_cb.cli import main
from asterisk_cb.records import sql
from asterisk_cb.records.cel_rows import CelRow
from asterisk_cb.records.settings import Dialect, RecordsSite, parse_columns, parse_dsn
from asterisk_cb.secrecy import write_private

SECRET = "s3cr@t/pw"  # percent-encoded in the DSN: s3cr%40t%2Fpw


def write(tmp_path: Path, records: str) -> Path:
    path = tmp_path / "asterisk-cb.conf"
    write_private(path, REQUIRED + "[records]\n" + records)
    return path


def load(tmp_path: Path, records: str) -> deployment.Deployment:
    file = config.load(write(tmp_path, records), other_sections=deployment.SECTIONS)
    return deployment.from_settings_file(file)


def test_without_a_dsn_the_writer_is_off(tmp_path: Path) -> None:
    site = load(tmp_path, "")
    assert site.records == RecordsSite()
    assert site.records.dsn is None


def test_every_option_loads(tmp_path: Path) -> None:
    records = load(
        tmp_path,
        "dsn = mysql://cel:s3cr%40t%2Fpw@db.example:3307/asteriskcdrdb\ncel_table = asteriskcdrdb.cel\n"
        "marker_table = acb_marks\ncolumns = peeraccount=, userfield=, cid_num=callerid\nusegmtime = yes\n"
        "batch = 50\nconnect_timeout = 2s\nwrite_timeout = 30s\n",
    ).records
    assert records.dsn is not None
    assert (records.dsn.dialect, records.dsn.host, records.dsn.port) == (Dialect.MYSQL, "db.example", 3307)
    assert (records.dsn.user, records.dsn.password, records.dsn.database) == ("cel", SECRET, "asteriskcdrdb")
    assert (records.cel_table, records.marker_table, records.usegmtime, records.batch) == (
        "asteriskcdrdb.cel", "acb_marks", True, 50,
    )  # fmt: skip
    assert records.columns["peeraccount"] is None and records.columns["cid_num"] == "callerid"
    assert (records.connect_timeout, records.write_timeout) == (timedelta(seconds=2), timedelta(seconds=30))


def test_postgres_dsn_defaults_its_port() -> None:
    dsn = parse_dsn("postgresql://cel@127.0.0.1/asterisk")
    assert dsn is not None and (dsn.dialect, dsn.port) == (Dialect.POSTGRESQL, 5432)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("dsn = oracle://cel:s3cr%40t%2Fpw@db/x", "is not a database URL"),
        ("dsn = mysql://cel:s3cr%40t%2Fpw@db:notaport/x", "is not a database URL"),
        ("dsn = postgresql://cel:s3cr%40t%2Fpw@db", "is not a database URL"),
        ("cel_table = cel drop", "is not a table name"),
        ("columns = eventtime=", "eventtime cannot be left out"),
        ("columns = nosuch=x", "<standard column>=<its name>"),
        ("usegmtime = maybe", "is not yes or no"),
        ("batch = 0", "is not a whole number of events"),
        ("write_timeout = 1h", "is outside"),
        ("nosuch = 1", "unknown option"),
    ],
)
def test_a_bad_value_names_file_line_and_option_and_hides_the_password(
    tmp_path: Path, line: str, reason: str
) -> None:
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, "; the CEL writer\n" + line + "\n")
    message = str(refused.value)
    assert f"asterisk-cb.conf:{REQUIRED.count(chr(10)) + 3}" in message
    assert reason in message
    assert "s3cr" not in message


def test_check_config_shows_the_dsn_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "dsn = postgresql://cel:s3cr%40t%2Fpw@127.0.0.1:1/asterisk\n")
    rows = deployment.explain(
        load(tmp_path, "dsn = postgresql://cel:s3cr%40t%2Fpw@127.0.0.1:1/asterisk\n"), {}
    )
    assert ("[records] dsn", "postgresql://cel:(set)@127.0.0.1:1/asterisk", "default") in rows
    main(["--config", str(path), "check-config"])  # Redis unreachable is fine: the note says so
    output = capsys.readouterr()
    assert "[records] dsn" in output.out
    assert "s3cr" not in output.out + output.err


def test_migrate_dry_run_prints_the_sql_and_connects_to_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "dsn = mysql://cel:s3cr%40t%2Fpw@127.0.0.1:1/asterisk\n")  # nothing listens on 1
    assert main(["--config", str(path), "db", "migrate", "--dry-run"]) == 0
    output = capsys.readouterr().out
    assert output.startswith("CREATE TABLE IF NOT EXISTS `acb_cel_written` (")
    assert "PRIMARY KEY (source, entry_id)" in output


def test_migrate_without_a_dsn_and_a_bad_dsn_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "")
    assert main(["--config", str(path), "db", "migrate"]) == 2
    assert "[records] dsn is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["--config", str(path), "db", "migrate", "--dsn", "nosuch://cel:s3cr%40t@x/y"])
    assert usage.value.code == 2
    assert "s3cr" not in capsys.readouterr().err


def test_migrate_to_a_dead_database_fails_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "dsn = postgresql://cel:s3cr%40t%2Fpw@127.0.0.1:1/asterisk\nconnect_timeout = 1s\n"
    )
    assert main(["--config", str(path), "db", "migrate"]) == 4
    error = capsys.readouterr().err
    assert "cannot migrate: postgresql://cel:(set)@127.0.0.1:1/asterisk" in error
    assert "s3cr" not in error


AT = datetime(2026, 1, 2)
ROW = CelRow("CALLBACK_SCHEDULED", AT, "Ada", "+49", "u", "l", "{}")


def test_renamed_and_left_out_columns_shape_the_insert() -> None:
    site = RecordsSite(parse_dsn("mysql://u@h/d"), columns=parse_columns("cid_num=callerid, peeraccount="))
    insert = sql.mysql_cel_insert(site)
    assert "`callerid`" in insert and "peeraccount" not in insert
    values = sql.row_values(ROW, site.columns)
    assert len(values) == insert.count("%s") == 19
    assert values[:4] == ["CALLBACK_SCHEDULED", AT, "Ada", "+49"]


def test_postgres_insert_marks_first_and_casts_each_value() -> None:
    insert = sql.postgres_insert(RecordsSite(parse_dsn("postgresql://u@h/d"), cel_table="cdr.cel"))
    assert insert.startswith(
        'WITH marked AS (INSERT INTO "acb_cel_written" (source, entry_id) VALUES ($1, $2) '
    )
    assert 'INSERT INTO "cdr"."cel" (' in insert
    assert "$4::timestamp" in insert and "$15::integer" in insert and insert.endswith("FROM marked")


def test_a_drivers_message_quoting_the_password_is_masked_in_either_form() -> None:
    dsn = parse_dsn("postgresql://cel:s3cr%40t%2Fpw@db/asterisk")
    assert dsn is not None
    message = f"failed for postgresql://cel:s3cr%40t%2Fpw@db ({dsn.password})"
    assert dsn.hide(message) == "failed for postgresql://cel:(set)@db ((set))"
    assert "s3cr" not in repr(dsn)
