-- ocoserver database schema, version 1.
--
-- Applied in one transaction to a new database; PRAGMA user_version then
-- records the version. Times are UTC text 'YYYY-MM-DD HH:MM:SS' so that
-- they sort and compare as text and match what agents send. Inventory
-- columns without a declared type keep each value as the agent sent it
-- (integer, real or text), because agents mix numbers and strings.

CREATE TABLE setting (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE computer (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NOTE: NOCASE folds ASCII letters only, so 'PC-Ä' and 'pc-ä' differ.
    hostname TEXT NOT NULL UNIQUE COLLATE NOCASE,
    uid TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    agent_key TEXT NOT NULL DEFAULT '',
    server_key TEXT NOT NULL DEFAULT '',
    -- 0 until the agent has used the keys issued to it; while 0 the
    -- first-contact credentials are still accepted and the keys resent,
    -- so a lost hello response does not lock the agent out.
    keys_confirmed INTEGER NOT NULL DEFAULT 0,
    -- 1 once the computer authenticated with a request signature; plain
    -- key requests are rejected from then on.
    signed INTEGER NOT NULL DEFAULT 0,
    agent_timestamp REAL,
    created TEXT NOT NULL,
    last_seen TEXT,
    last_update TEXT,
    refresh_requested INTEGER NOT NULL DEFAULT 0,
    remote_address TEXT,
    agent_version TEXT,
    os, os_version, os_license, os_language, kernel_version, architecture,
    cpu, gpu, ram, serial, manufacturer, model, bios_version, uptime,
    boot_type, secure_boot, domain, battery_level, battery_status
);
-- A uid belongs to one computer at most, so two machines cloned from one
-- image never both match it (the agent endpoint keeps the first holder).
CREATE UNIQUE INDEX computer_uid ON computer (uid) WHERE uid <> '';

CREATE TABLE computer_network (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    address, netmask, broadcast, mac, interface
);
CREATE INDEX computer_network_computer ON computer_network (computer_id);

CREATE TABLE computer_screen (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    name, manufacturer, manufactured, resolution, size, type, serialno,
    technology
);
CREATE INDEX computer_screen_computer ON computer_screen (computer_id);

CREATE TABLE computer_printer (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    name, driver, paper, dpi, uri, status
);
CREATE INDEX computer_printer_computer ON computer_printer (computer_id);

CREATE TABLE computer_partition (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    device, mountpoint, filesystem, size, free, name, serial, uuid, encrypted
);
CREATE INDEX computer_partition_computer ON computer_partition (computer_id);

CREATE TABLE computer_software (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE INDEX computer_software_computer ON computer_software (computer_id);
CREATE INDEX computer_software_name ON computer_software (name, version);

CREATE TABLE computer_login (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    console TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    guid TEXT,
    UNIQUE (computer_id, username, console, timestamp)
);

CREATE TABLE computer_user (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    username, display_name, uid, gid, home, shell, disabled
);
CREATE INDEX computer_user_computer ON computer_user (computer_id);

CREATE TABLE computer_device (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    subclass, vendor, product, serial, name, details TEXT
);
CREATE INDEX computer_device_computer ON computer_device (computer_id);

CREATE TABLE computer_service (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT NOT NULL,
    details TEXT NOT NULL,
    -- When status, metrics or details last differed from the report before.
    last_change TEXT NOT NULL,
    UNIQUE (computer_id, name)
);

CREATE TABLE package (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    family TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    install_procedure TEXT NOT NULL,
    uninstall_procedure TEXT NOT NULL DEFAULT '',
    -- Comma-separated return codes that mean success, for example '0,3010'.
    success_codes TEXT NOT NULL DEFAULT '0',
    post_action TEXT NOT NULL DEFAULT 'none'
        CHECK (post_action IN ('none', 'restart', 'shutdown', 'exit')),
    post_action_timeout INTEGER NOT NULL DEFAULT 5,
    -- Path of the ZIP payload relative to the depot; NULL without payload.
    file_name TEXT,
    size INTEGER,
    sha256 TEXT,
    created TEXT NOT NULL,
    -- Comma-separated lower-case OS names and CPU architectures the package
    -- runs on (see ocoserver/compatibility.py); empty means any.
    compatible_os TEXT NOT NULL DEFAULT '',
    compatible_arch TEXT NOT NULL DEFAULT '',
    -- Post action after the uninstall procedure; the timeout is shared.
    uninstall_post_action TEXT NOT NULL DEFAULT 'none'
        CHECK (uninstall_post_action IN ('none', 'restart', 'shutdown', 'exit')),
    -- Minutes a job may stay executing before it is failed; NULL: no limit.
    deadline INTEGER CHECK (deadline > 0),
    -- st_mtime_ns of the payload when its size and SHA-256 were last
    -- verified; a download rehashes the file only when this differs.
    file_mtime_ns INTEGER,
    UNIQUE (family, version)
);

CREATE TABLE computer_package (
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
    installed TEXT NOT NULL,
    job_id INTEGER,
    -- Set instead of job_id when a deployment rule job installed the package.
    rule_job_id INTEGER,
    PRIMARY KEY (computer_id, package_id)
);

CREATE TABLE job_container (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    start_time TEXT NOT NULL,
    end_time TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    -- 0: continue after a failed job; 1: abort the computer's remaining jobs.
    sequence_mode INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    -- What a successful install does to the other installed versions of the
    -- same package family: 'none' keeps their records, 'replace' deletes them
    -- (the installer replaced them), 'uninstall-first' means the container
    -- contains uninstall jobs for them, ordered before the install.
    upgrade TEXT NOT NULL DEFAULT 'none'
        CHECK (upgrade IN ('none', 'replace', 'uninstall-first')),
    -- Weekday and time-of-day windows in server local time, such as
    -- 'Mon-Fri 18:00-06:00', separated by '; '; empty: any time.
    time_frames TEXT NOT NULL DEFAULT '',
    -- Agent address ranges in CIDR notation, '!' marking an exclusion,
    -- separated by ','; empty: any address.
    ip_ranges TEXT NOT NULL DEFAULT ''
);

-- Ids of computers, packages, containers, jobs and rules are never reused
-- (AUTOINCREMENT), so a late agent report for a deleted job cannot land on
-- a new job that took its id.
-- States: 0 waiting, 1 downloading, 2 executing, 3 succeeded, -1 failed,
-- -2 expired, -3 OS incompatible, -4 package conflict, -5 already installed.
CREATE TABLE job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES job_container (id) ON DELETE CASCADE,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
    procedure TEXT NOT NULL,
    is_uninstall INTEGER NOT NULL DEFAULT 0,
    sequence INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    download_progress REAL,
    return_code INTEGER,
    message TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    download_started TEXT,
    execution_started TEXT,
    execution_finished TEXT,
    last_update TEXT,
    -- Times a transport failure (agent error -9999 or a broken download)
    -- put the job back to waiting.
    retries INTEGER NOT NULL DEFAULT 0,
    -- When a hello last handed out this waiting job with its download while
    -- agent.max_concurrent_downloads applied; it holds a download slot.
    offered TEXT
);
CREATE INDEX job_computer_state ON job (computer_id, state);
CREATE INDEX job_container_jobs ON job (container_id);

CREATE TABLE event_rule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    log TEXT NOT NULL,
    query TEXT NOT NULL,
    created TEXT NOT NULL
);

CREATE TABLE event (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    log TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    provider TEXT NOT NULL,
    level,
    event_id,
    data TEXT NOT NULL,
    received TEXT NOT NULL,
    UNIQUE (computer_id, log, timestamp, provider, event_id, data)
);
CREATE INDEX event_computer_log_time ON event (computer_id, log, timestamp);

-- Signatures of recently accepted signed requests, so an exact replay inside
-- the reordering window is rejected even after a restart.
CREATE TABLE seen_signature (
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    signature TEXT NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (computer_id, signature)
);

-- Local admin password rotation rules. A rule applies to every computer when
-- all_computers is 1, otherwise to the computers listed in
-- password_rule_computer. The flag is explicit so that removing the last listed
-- computer leaves a rule that applies to none, not to all. For one computer and
-- username, a rule that lists the computer takes precedence over a rule for all
-- computers; `ocoserver password-rule add` rejects every other overlap.
-- Usernames compare case-insensitively, because Windows ignores their case.
CREATE TABLE password_rule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    all_computers INTEGER NOT NULL CHECK (all_computers IN (0, 1)),
    username TEXT NOT NULL COLLATE NOCASE CHECK (username <> ''),
    -- Characters the agent picks the new password from.
    alphabet TEXT NOT NULL CHECK (alphabet <> ''),
    length INTEGER NOT NULL CHECK (length BETWEEN 8 AND 256),
    -- Days after which the newest password is rotated.
    valid_days INTEGER NOT NULL CHECK (valid_days >= 1),
    -- Passwords kept per computer and username. While the agent may still
    -- revoke a new password (five minutes), the ones before it are kept too.
    history INTEGER NOT NULL CHECK (history >= 1),
    created TEXT NOT NULL
);
CREATE INDEX password_rule_username ON password_rule (username);

-- Computers a rule with all_computers = 0 applies to.
CREATE TABLE password_rule_computer (
    rule_id INTEGER NOT NULL REFERENCES password_rule (id) ON DELETE CASCADE,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, computer_id)
);
CREATE INDEX password_rule_computer_computer ON password_rule_computer (computer_id);

-- Passwords reported by agents, encrypted with AES-256-GCM under the server's
-- password key file (see ocoserver/passwordkey.py). The ciphertext column is
-- the 12-byte nonce followed by the GCM output, and no plain text is stored.
-- rule_id becomes NULL when the rule is removed, so the history survives it.
CREATE TABLE computer_password (
    id INTEGER PRIMARY KEY,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    rule_id INTEGER REFERENCES password_rule (id) ON DELETE SET NULL,
    username TEXT NOT NULL COLLATE NOCASE,
    ciphertext BLOB NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX computer_password_computer
    ON computer_password (computer_id, username, created);

-- Computer groups and package groups. A group may have a parent group, and
-- the members of a group include the members of all its subgroups. The
-- parent chain never forms a cycle: `ocoserver computer-group move` and
-- `package-group move` reject a parent inside the group's own subtree.
-- Names are unique case-insensitively and never all digits, so a command
-- argument is an id when it is all digits and a name otherwise.
CREATE TABLE computer_group (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    parent_id INTEGER REFERENCES computer_group (id),
    created TEXT NOT NULL
);
CREATE INDEX computer_group_parent ON computer_group (parent_id);

CREATE TABLE computer_group_member (
    group_id INTEGER NOT NULL REFERENCES computer_group (id) ON DELETE CASCADE,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, computer_id)
);
CREATE INDEX computer_group_member_computer ON computer_group_member (computer_id);

CREATE TABLE package_group (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    parent_id INTEGER REFERENCES package_group (id),
    created TEXT NOT NULL
);
CREATE INDEX package_group_parent ON package_group (parent_id);

-- position orders the packages of one group: lowest first.
CREATE TABLE package_group_member (
    group_id INTEGER NOT NULL REFERENCES package_group (id) ON DELETE CASCADE,
    package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (group_id, package_id)
);
CREATE INDEX package_group_member_package ON package_group_member (package_id);

-- Every computer in computer_group_id (with subgroups) gets a job for every
-- package in package_group_id (with subgroups). The groups cannot be removed
-- while a rule uses them.
CREATE TABLE deployment_rule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    computer_group_id INTEGER NOT NULL REFERENCES computer_group (id),
    package_group_id INTEGER NOT NULL REFERENCES package_group (id),
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    priority INTEGER NOT NULL DEFAULT 0,
    -- 0: continue after a failed job; 1: abort the computer's remaining jobs.
    sequence_mode INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);

-- Jobs created by deployment rules. They have their own id range, and agents
-- receive and report them as "dynamic-<id>". States as in the job table.
CREATE TABLE rule_job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id INTEGER NOT NULL REFERENCES deployment_rule (id) ON DELETE CASCADE,
    computer_id INTEGER NOT NULL REFERENCES computer (id) ON DELETE CASCADE,
    package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
    procedure TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    download_progress REAL,
    return_code INTEGER,
    message TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    download_started TEXT,
    execution_started TEXT,
    execution_finished TEXT,
    last_update TEXT,
    -- Transport failures retried so far (see agent.max_job_retries).
    retries INTEGER NOT NULL DEFAULT 0,
    -- As job.offered: when a hello last handed out this waiting job with its
    -- download while agent.max_concurrent_downloads applied.
    offered TEXT,
    UNIQUE (rule_id, computer_id, package_id)
);
CREATE INDEX rule_job_computer_state ON rule_job (computer_id, state);
-- Download slots and housekeeping look jobs up by state across computers.
CREATE INDEX job_state ON job (state);
CREATE INDEX rule_job_state ON rule_job (state);


-- Keys of the client API (administration over HTTP). Only the SHA-256 hash
-- of a key is stored; the key itself is printed once when it is created.
CREATE TABLE api_key (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'deploy', 'admin')),
    key_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    last_used TEXT,
    -- Set when the key is revoked; the row stays so the audit log keeps its name.
    revoked TEXT
);
CREATE UNIQUE INDEX api_key_active_name ON api_key (name) WHERE revoked IS NULL;

-- One row per client API call: who called which method on which objects,
-- and how it ended. Never contains a key.
CREATE TABLE api_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    key_id INTEGER,
    key_name TEXT,
    remote_address TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL,
    -- JSON object of the ids the call named or created, such as {"id": 4}.
    targets TEXT NOT NULL DEFAULT '{}',
    -- NULL for success, else the JSON-RPC error code.
    error_code INTEGER
);

-- Package payloads uploaded over HTTP and not yet used by oco.package.create.
-- The file is already in the depot under its final name.
CREATE TABLE package_upload (
    id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    key_name TEXT NOT NULL,
    created TEXT NOT NULL,
    -- st_mtime_ns of the stored file, copied to package.file_mtime_ns.
    mtime_ns INTEGER NOT NULL
);

-- Accounts of the web console. password_hash is
-- 'scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>' (see ocoserver/web/passwords.py).
CREATE TABLE admin_user (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    last_login TEXT
);

-- Web console sessions. Only the SHA-256 hash of the session token is
-- stored, so a copy of the database does not let anyone log in.
CREATE TABLE admin_session (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES admin_user (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE INDEX admin_session_user ON admin_session (user_id);

-- One row per stored password shown in the web console. The names are
-- copied, so the entry outlives the account and the computer.
CREATE TABLE password_reveal (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    admin_name TEXT NOT NULL,
    computer_id INTEGER,
    hostname TEXT NOT NULL,
    username TEXT NOT NULL,
    remote_address TEXT NOT NULL DEFAULT ''
);
