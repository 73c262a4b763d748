-- The standard Asterisk cdr and cel tables (cdr_pgsql / cel_pgsql map columns by name).
-- Created by `pbx-lab up postgres` before Asterisk starts: Asterisk drops records for a missing table.
CREATE TABLE IF NOT EXISTS cdr (
    calldate    timestamptz  NOT NULL DEFAULT now(),
    clid        varchar(80)  NOT NULL DEFAULT '',
    src         varchar(80)  NOT NULL DEFAULT '',
    dst         varchar(80)  NOT NULL DEFAULT '',
    dcontext    varchar(80)  NOT NULL DEFAULT '',
    channel     varchar(80)  NOT NULL DEFAULT '',
    dstchannel  varchar(80)  NOT NULL DEFAULT '',
    lastapp     varchar(80)  NOT NULL DEFAULT '',
    lastdata    varchar(255) NOT NULL DEFAULT '',
    duration    integer      NOT NULL DEFAULT 0,
    billsec     integer      NOT NULL DEFAULT 0,
    disposition varchar(45)  NOT NULL DEFAULT '',
    amaflags    integer      NOT NULL DEFAULT 0,
    accountcode varchar(80)  NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT '',
    peeraccount varchar(80)  NOT NULL DEFAULT '',
    linkedid    varchar(150) NOT NULL DEFAULT '',
    sequence    integer      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cdr_uniqueid ON cdr (uniqueid);
CREATE INDEX IF NOT EXISTS cdr_linkedid ON cdr (linkedid);
CREATE INDEX IF NOT EXISTS cdr_calldate ON cdr (calldate);

CREATE TABLE IF NOT EXISTS cel (
    id          bigserial    PRIMARY KEY,
    eventtype   varchar(30)  NOT NULL,
    eventtime   timestamptz  NOT NULL,
    cid_name    varchar(80)  NOT NULL DEFAULT '',
    cid_num     varchar(80)  NOT NULL DEFAULT '',
    cid_ani     varchar(80)  NOT NULL DEFAULT '',
    cid_rdnis   varchar(80)  NOT NULL DEFAULT '',
    cid_dnid    varchar(80)  NOT NULL DEFAULT '',
    exten       varchar(80)  NOT NULL DEFAULT '',
    context     varchar(80)  NOT NULL DEFAULT '',
    channame    varchar(80)  NOT NULL DEFAULT '',
    appname     varchar(80)  NOT NULL DEFAULT '',
    appdata     varchar(512) NOT NULL DEFAULT '',
    amaflags    integer      NOT NULL DEFAULT 0,
    accountcode varchar(80)  NOT NULL DEFAULT '',
    peeraccount varchar(80)  NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    linkedid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT '',
    peer        varchar(80)  NOT NULL DEFAULT '',
    extra       text         NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cel_linkedid ON cel (linkedid);
CREATE INDEX IF NOT EXISTS cel_uniqueid ON cel (uniqueid);

-- asterisk-cb's optional CDR columns (README "CDR: finding callback calls"): cdr_pgsql fills each
-- from the CDR variable of the same name, set on every channel of a callback's calls.
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_id varchar(64) NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_attempt varchar(10) NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_phase varchar(10) NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_leg varchar(10) NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_agent varchar(64) NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS acb_origin_linkedid varchar(150) NOT NULL DEFAULT '';
