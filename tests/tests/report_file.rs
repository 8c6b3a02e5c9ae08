//! The therapist report holds the couple's notes and reflections: it is written readable
//! by its owner only, and a symlink planted at the output path is replaced, never
//! followed (so the report cannot be made to overwrite another file).

use std::os::unix::fs::PermissionsExt;

use duet_tests::Device;

#[test]
fn the_report_is_private_and_a_planted_symlink_is_not_followed() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["rate", "Walk", "1", "--note", "a private note"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").expect("victim");
    let out = dir.path().join("report.html");
    std::os::unix::fs::symlink(&victim, &out).expect("plant a symlink");

    d.ok(&["report", "--html", out.to_str().expect("path")]);

    assert_eq!(
        std::fs::read(&victim).expect("victim"),
        b"precious",
        "the file behind the symlink is untouched"
    );
    let meta = std::fs::symlink_metadata(&out).expect("report");
    assert!(meta.file_type().is_file(), "the report is a regular file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    assert!(
        std::fs::read_to_string(&out)
            .expect("report")
            .contains("Walk")
    );
}
