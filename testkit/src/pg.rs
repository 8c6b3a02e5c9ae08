//! Fresh schemas on the PostgreSQL server named by `DUET_TEST_POSTGRES` (`.ci/run` starts
//! one with `.ci/postgres`); tests that need one are skipped, with a note, without it.

/// The env var naming the PostgreSQL server of the tests.
pub const PG_ENV: &str = "DUET_TEST_POSTGRES";

/// The server's URL, or `None` with a note that the test is skipped.
pub fn server() -> Option<String> {
    let base = std::env::var(PG_ENV).ok();
    if base.is_none() {
        eprintln!(
            "skipped: this test needs PostgreSQL; set {PG_ENV} (e.g. {PG_ENV}=\"$(.ci/postgres)\", as .ci/run does)"
        );
    }
    base
}

/// A fresh schema on the `DUET_TEST_POSTGRES` server, or `None` (with a note) without one.
pub fn fresh() -> Option<String> {
    Some(schema_on(&server()?))
}

/// A fresh schema on the PostgreSQL server at `base`, as a URL whose connections use it
/// (the relay creates its tables there).
pub fn schema_on(base: &str) -> String {
    let schema = format!("t_{}", hex::encode(duet_core::ids::random_bytes::<8>()));
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
    // The `postgres` client runs its own runtime: never on an async test's thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            postgres::Client::connect(base, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&sql))
                .unwrap_or_else(|e| panic!("cannot create a schema on {base}: {e}"))
        })
        .join()
        .expect("the schema thread panicked")
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// `url` with its connections named `name` (`application_name`), so that a test can end
/// exactly its own relay's sessions ([`end_sessions`]) on a server other tests share.
pub fn named(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

/// Ends every session named `name` on the server at `url` (as an operator's
/// `pg_terminate_backend`, a restart of PostgreSQL or a failover would); returns how
/// many it ended.
pub fn end_sessions(url: &str, name: &str) -> u64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
            let rows = c
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .unwrap_or_else(|e| panic!("cannot end the sessions: {e}"));
            rows.len() as u64
        })
        .join()
        .expect("the session thread panicked")
    })
}

/// Drops the schema a [`schema_on`] URL uses, and everything in it (a relay over it then
/// finds no table: its database no longer answers).
pub fn drop_schema_of(url: &str) {
    let schema = url
        .split("search_path%3D")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap_or_else(|| panic!("no schema in {url}"))
        .to_string();
    std::thread::scope(|s| {
        s.spawn(|| {
            postgres::Client::connect(url, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")))
                .unwrap_or_else(|e| panic!("cannot drop {schema}: {e}"))
        })
        .join()
        .expect("the schema thread panicked")
    });
}
