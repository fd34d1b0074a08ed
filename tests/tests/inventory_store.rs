//! The inventory store on a real PostgreSQL: import is all-or-nothing, secrets are sealed, a
//! wrong key fails clearly, views need no key.

use collector::inventory::store::*;
use collector::inventory::{Device, DeviceView, parse_inventory};
use collector::secrets::SecretBox;
use netwarden_tests::pg;

async fn migrated(tdb: &pg::TestDb) -> tokio_postgres::Client {
    let mut c = tdb.connect().await;
    collector::db::migrate(&mut c, collector::db::BackendChoice::Auto).await.expect("migrate");
    c
}

fn inventory(text: &str) -> Vec<Device> {
    parse_inventory("t.yaml", text, None).unwrap()
}

const THREE: &str = "devices:
  - { name: a, address: 10.0.0.1, tags: [x, y], poll_interval: 30s, snmp: { version: v2c, community: public-a } }
  - name: b
    address: \"[2001:db8::2]:1161\"
    snmp: { version: v3, user: u, auth: SHA-256, auth_password: authpass1, priv: AES-256, priv_password: privpass1 }
    ssh: { user: ops, password: sshpass1, port: 2222 }
  - name: c
    address: c.example
    snmp: { version: v3, user: nobody, context: ctx }
    ssh: { user: ops, key: \"-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n\", passphrase: pp }
";

fn without_ids(devices: Vec<Device>) -> Vec<Device> {
    devices.into_iter().map(|d| Device { id: None, ..d }).collect()
}

#[tokio::test]
async fn import_list_get_delete_upsert() {
    let tdb = pg::fresh_db();
    let secrets = SecretBox::from_key(&[1; 32]);
    let mut client = migrated(&tdb).await;
    let devices = inventory(THREE);

    let report = import(&mut client, &secrets, &devices, ImportMode::Merge).await.unwrap();
    assert_eq!(report.created, ["a", "b", "c"]);
    assert_eq!(report.to_string(), "inventory imported: 3 created, 0 updated, 0 unchanged, 0 deleted");
    let stored = list(&client, &secrets).await.unwrap();
    assert!(stored.iter().all(|d| d.id.is_some()));
    assert_eq!(without_ids(stored.clone()), devices);

    // Secrets are sealed: the clear text is nowhere in the row.
    let row = client.query_one("SELECT snmp_secret, ssh_secret FROM device WHERE name = 'b'", &[]).await.unwrap();
    for column in ["snmp_secret", "ssh_secret"] {
        let sealed: Vec<u8> = row.get(column);
        assert!(!String::from_utf8_lossy(&sealed).contains("pass1"), "{column} is not sealed");
    }

    let views = list_views(&client).await.unwrap();
    assert_eq!(views, stored.iter().map(DeviceView::from).collect::<Vec<_>>());
    assert_eq!(get_view_by_name(&client, "b").await.unwrap(), Some(DeviceView::from(&stored[1])));
    assert_eq!(get_by_name(&client, &secrets, "c").await.unwrap().as_ref(), Some(&stored[2]));
    assert_eq!(get_by_name(&client, &secrets, "zz").await.unwrap(), None);

    // The same file again changes nothing.
    let report = import(&mut client, &secrets, &devices, ImportMode::Merge).await.unwrap();
    assert_eq!((report.unchanged.len(), report.created.len(), report.updated.len()), (3, 0, 0));

    // Replace with a changed subset: one update, the rest deleted.
    let mut changed = devices[..1].to_vec();
    changed[0].tags.push("z".into());
    let report = import(&mut client, &secrets, &changed, ImportMode::Replace).await.unwrap();
    assert_eq!(
        report,
        ImportReport { updated: vec!["a".into()], deleted: vec!["b".into(), "c".into()], ..Default::default() }
    );
    assert_eq!(without_ids(list(&client, &secrets).await.unwrap()), changed);

    let mut d = devices[1].clone();
    let first = upsert_one(&client, &secrets, &d).await.unwrap();
    assert!(first.id.is_some());
    d.host = "10.0.0.99".into();
    let again = upsert_one(&client, &secrets, &d).await.unwrap();
    assert_eq!(again.id, first.id, "an upsert of an existing name keeps its id");
    assert_eq!(get_by_name(&client, &secrets, "b").await.unwrap(), Some(again));

    assert!(delete_by_name(&client, "b").await.unwrap());
    assert!(!delete_by_name(&client, "b").await.unwrap());
}

#[tokio::test]
async fn import_is_all_or_nothing_and_wrong_key_fails_clearly() {
    let tdb = pg::fresh_db();
    let secrets = SecretBox::from_key(&[1; 32]);
    let mut client = migrated(&tdb).await;
    let devices = inventory(THREE);
    import(&mut client, &secrets, &devices[..1], ImportMode::Merge).await.unwrap();

    // The last device breaks a table constraint: the first two must not be written either.
    let mut bad = devices.clone();
    bad[2].host = String::new();
    let err = import(&mut client, &secrets, &bad, ImportMode::Replace).await.unwrap_err();
    assert!(matches!(err, StoreError::Db(_)), "{err}");
    assert!(!err.is_transient());
    assert_eq!(without_ids(list(&client, &secrets).await.unwrap()), devices[..1]);

    let dup = [devices[0].clone(), devices[0].clone()];
    let err = import(&mut client, &secrets, &dup, ImportMode::Merge).await.unwrap_err();
    assert_eq!(err.to_string(), r#"device "a": appears twice in the import"#);

    let other = SecretBox::from_key(&[2; 32]);
    let err = list(&client, &other).await.unwrap_err();
    assert!(matches!(err, StoreError::Secret { .. }), "{err}");
    assert!(
        err.to_string().starts_with(r#"device "a": sealed secret (device:a:snmp): cannot open: wrong key"#),
        "{err}"
    );
    // Views need no key.
    assert_eq!(list_views(&client).await.unwrap().len(), 1);

    // Importing under a new key rewrites what no longer opens.
    let report = import(&mut client, &other, &devices[..1], ImportMode::Merge).await.unwrap();
    assert_eq!(report.updated, ["a"]);
    assert_eq!(without_ids(list(&client, &other).await.unwrap()), devices[..1]);

    // Works inside a caller's transaction too (as a savepoint).
    let mut tx = client.transaction().await.unwrap();
    let report = import(&mut tx, &other, &devices, ImportMode::Merge).await.unwrap();
    assert_eq!(report.created, ["b", "c"]);
    tx.rollback().await.unwrap();
    assert_eq!(list_views(&client).await.unwrap().len(), 1);
}
