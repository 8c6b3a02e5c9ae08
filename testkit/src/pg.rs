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
