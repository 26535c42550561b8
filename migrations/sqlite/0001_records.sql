-- Records: one row per resource document. See src/store/mod.rs for the contract.
CREATE TABLE records (
    kind    TEXT    NOT NULL,
    account TEXT    NOT NULL,
    region  TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (kind, account, region, name)
) WITHOUT ROWID;

-- Server-wide settings, such as the key that signs pagination tokens.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
