//! The demo building: shape, units, history and determinism.
#![allow(clippy::unwrap_used)]

mod common;

use hs_core::demo::{self, HISTORY_SAMPLES};
use hs_core::ops::{HaystackOps, HisRange, HisReadRequest, NavRequest, ReadRequest};
use libhaystack::val::{Ref, Value};

fn end() -> chrono::DateTime<chrono::Utc> {
    "2024-06-10T12:07:00Z".parse().unwrap()
}

async fn count(store: &hs_core::store::MemoryStore, filter: &str) -> usize {
    store
        .read(ReadRequest::filter(filter, None).unwrap())
        .await
        .unwrap()
        .rows
        .len()
}

#[tokio::test]
async fn building_shape() {
    let started = std::time::Instant::now();
    let store = demo::building_at(end());
    eprintln!("demo building generated in {:?}", started.elapsed());
    assert_eq!(count(&store, "site").await, 1);
    assert_eq!(count(&store, "ahu").await, demo::AHU_COUNT);
    assert_eq!(
        count(&store, "vav").await,
        demo::AHU_COUNT * demo::VAVS_PER_AHU
    );
    assert_eq!(count(&store, "meter and elec").await, 1);
    let points = count(&store, "point").await;
    assert!((950..=1_100).contains(&points), "{points} points");
    assert_eq!(count(&store, "point and his").await, points);
    assert!(count(&store, "point and writable and sp").await >= 60 * 4);
    assert_eq!(
        count(&store, "point and kind == \"Number\" and not unit").await,
        1,
        "only power factor is unitless"
    );
    assert_eq!(
        count(&store, "zone and air and temp and sensor and equipRef->vav").await,
        60
    );
    // Every point's equip and site resolve.
    assert_eq!(
        count(&store, "point and equipRef->equip and siteRef->site").await,
        points
    );

    let site = store.entity(demo::SITE_ID).unwrap();
    assert_eq!(site.get("tz"), Some(&Value::make_str("New_York")));
    assert!(site.get("geoCity").is_some() && site.get("area").is_some());

    let nav = store
        .nav(NavRequest {
            nav_id: Some("demo-vav1-01".into()),
        })
        .await
        .unwrap();
    assert_eq!(nav.rows.len(), 15);

    for id in ["demo-ahu1-dat", "demo-vav4-15-zat", "demo-meter-energy"] {
        assert_eq!(store.history_len(id), HISTORY_SAMPLES, "{id}");
        assert!(store.entity(id).unwrap().get("curVal").is_some());
    }
    let week = store
        .his_read(HisReadRequest {
            ids: vec![Ref::from("demo-ahu1-dat")],
            range: HisRange::parse("2024-06-03T12:00:00Z,2024-06-10T12:00:01Z").unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(week.rows.len(), HISTORY_SAMPLES);
}

#[test]
fn building_is_deterministic() {
    let a = demo::building_at(end());
    let b = demo::building_at(end());
    for id in ["demo-ahu2-rat", "demo-vav3-07-co2", "demo-meter-power"] {
        assert_eq!(a.entity(id), b.entity(id), "{id}");
    }
}
