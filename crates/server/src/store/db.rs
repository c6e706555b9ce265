//! The two database backends behind one synchronous transaction interface.
//!
//! Both SQLite (rusqlite) and PostgreSQL (the synchronous `postgres` client) run on tokio's
//! blocking pool, so the store's logic is written once, as plain functions over a [`Tx`].
//! SQL is written with PostgreSQL's `$1` placeholders; SQLite gets `?1` (positional).

use std::sync::Mutex;

use super::StoreError;

/// Which SQL dialect a transaction speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter or a column value. NULLs are typed, because PostgreSQL checks parameter
/// types even for NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    I(i64),
    T(String),
    NullI,
    NullT,
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::T(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::T(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Val::NullI, Val::I)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        v.map_or(Val::NullT, Val::T)
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub(crate) struct Row(Vec<Val>);

impl Row {
    /// Column `i` as an integer (NULL and text give `None`).
    pub(crate) fn int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Val::I(v)) => Some(*v),
            _ => None,
        }
    }
    /// Column `i` as text (NULL and integers give `None`).
    pub(crate) fn text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Val::T(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

/// One open transaction. Dropped without commit, it rolls back.
pub(crate) trait Tx {
    /// The dialect (for the few statements that differ).
    fn dialect(&self) -> Dialect;
    /// Runs a query and returns its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError>;
    /// Runs a statement and returns the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
}

/// `$1` placeholders to SQLite's `?1`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn db_err(what: impl std::fmt::Display) -> StoreError {
    StoreError::Database(what.to_string())
}

struct SqliteTx<'a>(rusqlite::Transaction<'a>);

fn sqlite_param(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::I(i) => Value::Integer(*i),
        Val::T(t) => Value::Text(t.clone()),
        Val::NullI | Val::NullT => Value::Null,
    }
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let sql = sqlite_sql(sql);
        let mut stmt = self.0.prepare_cached(&sql).map_err(db_err)?;
        let n = stmt.column_count();
        let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_param).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                use rusqlite::types::ValueRef;
                vals.push(match row.get_ref(i).map_err(db_err)? {
                    ValueRef::Integer(v) => Val::I(v),
                    ValueRef::Text(t) => Val::T(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(r) => Val::T(r.to_string()),
                    ValueRef::Blob(_) | ValueRef::Null => Val::NullT,
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let sql = sqlite_sql(sql);
        let mut stmt = self.0.prepare_cached(&sql).map_err(db_err)?;
        let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_param).collect();
        let n = stmt
            .execute(rusqlite::params_from_iter(values))
            .map_err(db_err)?;
        Ok(n as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql).map_err(db_err)
    }
}

struct PgTx<'a>(postgres::Transaction<'a>);

impl Tx for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        use postgres::types::{ToSql, Type};
        let none_i: Option<i64> = None;
        let none_t: Option<String> = None;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|v| -> &(dyn ToSql + Sync) {
                match v {
                    Val::I(i) => i,
                    Val::T(t) => t,
                    Val::NullI => &none_i,
                    Val::NullT => &none_t,
                }
            })
            .collect();
        let rows = self.0.query(sql, &refs).map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut vals = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let t = col.type_();
                let v = if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)
                        .map_err(db_err)?
                        .map_or(Val::NullI, Val::I)
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)
                        .map_err(db_err)?
                        .map_or(Val::NullI, |v| Val::I(v.into()))
                } else if *t == Type::INT2 {
                    row.try_get::<_, Option<i16>>(i)
                        .map_err(db_err)?
                        .map_or(Val::NullI, |v| Val::I(v.into()))
                } else if *t == Type::BOOL {
                    row.try_get::<_, Option<bool>>(i)
                        .map_err(db_err)?
                        .map_or(Val::NullI, |v| Val::I(v.into()))
                } else {
                    row.try_get::<_, Option<String>>(i)
                        .map_err(db_err)?
                        .map_or(Val::NullT, Val::T)
                };
                vals.push(v);
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        use postgres::types::ToSql;
        let none_i: Option<i64> = None;
        let none_t: Option<String> = None;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|v| -> &(dyn ToSql + Sync) {
                match v {
                    Val::I(i) => i,
                    Val::T(t) => t,
                    Val::NullI => &none_i,
                    Val::NullT => &none_t,
                }
            })
            .collect();
        self.0.execute(sql, &refs).map_err(db_err)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.batch_execute(sql).map_err(db_err)
    }
}

/// A transaction body for the PostgreSQL worker thread.
type PgJob = Box<dyn FnOnce(&mut PgConn) + Send>;

/// The PostgreSQL connection, owned by its worker thread (the synchronous client runs its
/// own small runtime, which must not be started on a tokio thread).
pub(crate) struct PgConn {
    config: postgres::Config,
    client: Option<postgres::Client>,
}

impl PgConn {
    /// The client, reconnecting first if the connection was lost.
    fn client(&mut self) -> Result<&mut postgres::Client, StoreError> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            self.client = Some(self.config.connect(postgres::NoTls).map_err(db_err)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| db_err("no PostgreSQL connection"))
    }
}

/// An open database: one connection, used by one transaction at a time.
pub(crate) enum Db {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(Mutex<std::sync::mpsc::Sender<PgJob>>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(_) => f.write_str("Db::Sqlite"),
            Db::Postgres(_) => f.write_str("Db::Postgres"),
        }
    }
}

impl Db {
    /// Opens a SQLite database: a file path, or `:memory:`.
    pub(crate) fn open_sqlite(path: &str) -> Result<Db, StoreError> {
        let conn = if path == ":memory:" {
            rusqlite::Connection::open_in_memory()
        } else {
            rusqlite::Connection::open(path)
        }
        .map_err(|e| StoreError::Open {
            url: format!("sqlite://{path}"),
            reason: e.to_string(),
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        // WAL keeps readers off the writer; synchronous=FULL makes a commit durable even on
        // power loss; foreign keys make a domain's removal take its rows with it.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(db_err)?;
        Ok(Db::Sqlite(Mutex::new(conn)))
    }

    /// Connects to PostgreSQL (`postgres://user@host:port/db`, no TLS: a local or tunnelled
    /// server) on a dedicated thread that then runs every transaction.
    pub(crate) fn open_postgres(url: &str) -> Result<Db, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Open {
            url: redact_url(url),
            reason: format!("{e}"),
        })?;
        config.connect_timeout(std::time::Duration::from_secs(10));
        let (jobs, inbox) = std::sync::mpsc::channel::<PgJob>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let redacted = redact_url(url);
        std::thread::Builder::new()
            .name("certwatch-postgres".into())
            .spawn(move || {
                let mut conn = PgConn {
                    config,
                    client: None,
                };
                let first = conn.client().map(|_| ()).map_err(|e| e.to_string());
                let ok = first.is_ok();
                let _ = ready_tx.send(first);
                if !ok {
                    return;
                }
                // Ends when the store (the sender) is dropped.
                while let Ok(job) = inbox.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Open {
                url: redacted.clone(),
                reason: format!("cannot start the database thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Db::Postgres(Mutex::new(jobs))),
            Ok(Err(reason)) => Err(StoreError::Open {
                url: redacted,
                reason,
            }),
            Err(_) => Err(StoreError::Open {
                url: redacted,
                reason: "the database thread ended".into(),
            }),
        }
    }

    /// The dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `f` in one transaction (SQLite: `BEGIN IMMEDIATE`, so the writer lock is taken
    /// first and claims never race). Commits on `Ok`, rolls back on `Err`. Blocks: call it
    /// from a blocking thread.
    pub(crate) fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match self {
            Db::Sqlite(m) => {
                let mut conn = m.lock().map_err(|_| db_err("connection lock poisoned"))?;
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(db_err)?;
                let mut tx = SqliteTx(tx);
                let out = f(&mut tx)?;
                tx.0.commit().map_err(db_err)?;
                Ok(out)
            }
            Db::Postgres(jobs) => {
                let (reply, answer) = std::sync::mpsc::channel::<Result<T, StoreError>>();
                let job: PgJob = Box::new(move |conn: &mut PgConn| {
                    let run = || -> Result<T, StoreError> {
                        let client = conn.client()?;
                        let tx = client.transaction().map_err(db_err)?;
                        let mut tx = PgTx(tx);
                        let out = f(&mut tx)?;
                        tx.0.commit().map_err(db_err)?;
                        Ok(out)
                    };
                    let _ = reply.send(run());
                });
                jobs.lock()
                    .map_err(|_| db_err("connection lock poisoned"))?
                    .send(job)
                    .map_err(|_| db_err("the database thread ended"))?;
                answer
                    .recv()
                    .map_err(|_| db_err("the database thread ended"))?
            }
        }
    }
}

/// A database URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
    {
        let user = userinfo.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}
