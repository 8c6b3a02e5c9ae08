//! The PostgreSQL schema: its version, the migrations that reach it (run under an
//! advisory lock, so that two instances starting at once do not both migrate), and
//! schemas of their own for tests that share one server.

use postgres::{Client, NoTls};

use super::off_runtime;
use crate::store::StoreError;

pub use crate::store::migrations::SCHEMA_VERSION;

/// The advisory lock that serializes migrations (an arbitrary constant: "duet" in ASCII).
const MIGRATION_LOCK: i64 = 0x6475_6574;

/// Creates the schema `schema` (letters, digits and `_` only) on the server at
/// `base_url` and returns a URL whose connections use it (PostgreSQL's `search_path`):
/// one server can then hold several independent relay databases, as the tests do.
pub fn create_schema(base_url: &str, schema: &str) -> Result<String, StoreError> {
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(StoreError::Corrupt(
            "a schema name is letters, digits and _",
        ));
    }
    let base = base_url.to_string();
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
    off_runtime(move || -> Result<(), StoreError> {
        Client::connect(&base, NoTls)?.batch_execute(&sql)?;
        Ok(())
    })?;
    let sep = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!("{base_url}{sep}options=-csearch_path%3D{schema}"))
}

/// Creates or migrates the schema to [`SCHEMA_VERSION`] in one transaction.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS duet_schema (version BIGINT NOT NULL)")?;
    let version: i64 = match tx.query_opt("SELECT version FROM duet_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO duet_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let start = usize::try_from(version).map_err(|_| StoreError::Corrupt("schema version"))?;
    for sql in
        crate::store::migrations::migrations(crate::store::migrations::Dialect::Postgres, start)
    {
        tx.batch_execute(&sql)?;
    }
    tx.execute("UPDATE duet_schema SET version = $1", &[&SCHEMA_VERSION])?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_name_must_be_plain() {
        for bad in ["", "a;DROP TABLE events", "a b", "x-y"] {
            assert!(
                create_schema("postgres://127.0.0.1:1/none", bad).is_err(),
                "{bad}"
            );
        }
    }
}
