-- The classic Asterisk cdr and cel tables for MariaDB/MySQL (the `calldate` cdr FreePBX uses), with
-- the columns of cdr_cel.sql. cdr_adaptive_odbc and cel_odbc map columns by name (cdr_adaptive_odbc.conf
-- aliases start => calldate). Created by `pbx-lab up mariadb` in the lab's own database.
CREATE TABLE IF NOT EXISTS cdr (
    calldate    datetime     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    clid        varchar(80)  NOT NULL DEFAULT '',
    src         varchar(80)  NOT NULL DEFAULT '',
    dst         varchar(80)  NOT NULL DEFAULT '',
    dcontext    varchar(80)  NOT NULL DEFAULT '',
    channel     varchar(80)  NOT NULL DEFAULT '',
    dstchannel  varchar(80)  NOT NULL DEFAULT '',
    lastapp     varchar(80)  NOT NULL DEFAULT '',
    lastdata    varchar(255) NOT NULL DEFAULT '',
    duration    int          NOT NULL DEFAULT 0,
    billsec     int          NOT NULL DEFAULT 0,
    disposition varchar(45)  NOT NULL DEFAULT '',
    amaflags    int          NOT NULL DEFAULT 0,
    accountcode varchar(80)  NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT '',
    peeraccount varchar(80)  NOT NULL DEFAULT '',
    linkedid    varchar(150) NOT NULL DEFAULT '',
    sequence    int          NOT NULL DEFAULT 0,
    KEY cdr_uniqueid (uniqueid),
    KEY cdr_linkedid (linkedid),
    KEY cdr_calldate (calldate)
) DEFAULT CHARSET = utf8mb4;

-- eventtime keeps microseconds (cel_odbc writes them), so rows order by it as in PostgreSQL.
CREATE TABLE IF NOT EXISTS cel (
    id          bigint       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    eventtype   varchar(30)  NOT NULL,
    eventtime   datetime(6)  NOT NULL,
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
    amaflags    int          NOT NULL DEFAULT 0,
    accountcode varchar(80)  NOT NULL DEFAULT '',
    peeraccount varchar(80)  NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    linkedid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT '',
    peer        varchar(80)  NOT NULL DEFAULT '',
    extra       text         NOT NULL,
    KEY cel_linkedid (linkedid),
    KEY cel_uniqueid (uniqueid)
) DEFAULT CHARSET = utf8mb4;

-- asterisk-cb's optional CDR columns (README "CDR: finding callback calls"): cdr_adaptive_odbc fills
-- each from the CDR variable of the same name, set on every channel of a callback's calls.
ALTER TABLE cdr
  ADD COLUMN IF NOT EXISTS acb_id varchar(64) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS acb_attempt varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS acb_phase varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS acb_leg varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS acb_agent varchar(64) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS acb_origin_linkedid varchar(150) NOT NULL DEFAULT '';
