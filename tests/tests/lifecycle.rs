//! A couple's lifecycle through the real binaries and relay: removing the other
//! partner's device is asked for and explained before it happens.

use duet_tests::{Relay, pair};

#[test]
fn removing_the_partners_only_device_asks_first_and_says_what_it_means() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&["sync"]);
    let sam_key = sam.json(&["export"])["me"]["device"]
        .as_str()
        .expect("Sam's device key")
        .to_string();
    // A script (no terminal to ask on) without --yes: refused, nothing removed.
    let refused = alex.run(&["device", "remove", &sam_key[..12]]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("Sam's only device")
            && refused
                .stderr
                .contains("no longer be able to read or write")
            && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    let listed = alex.json(&["device", "list"]);
    let row = listed
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["device"] == sam_key.as_str())
        .expect("Sam's device");
    assert_eq!(row["removed"], false, "nothing was removed");
    // With --yes it goes through.
    let out = alex.ok(&["device", "remove", &sam_key[..12], "--yes"]);
    assert!(out.contains("Removed device"), "{out}");
}
