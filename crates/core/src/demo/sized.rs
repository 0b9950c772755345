//! A deterministic building of any size, for benchmarks and load tests:
//! sites of [`EQUIPS_PER_SITE`] equips of [`POINTS_PER_EQUIP`] points, with
//! refs, markers, units and current values, and no history.
//!
//! Ids are short and predictable: sites `s1…`, equips `e1…`, points `p1…`,
//! each numbered across the whole building. In each site the first of every
//! ten equips is an air handler, the others VAV boxes fed by it (`ahuRef`);
//! an equip's points cycle through the [demo building](super)'s point list
//! for its kind, so a point's markers, unit and `kind` are realistic. Every
//! point has `point`, `kind`, `tz`, `siteRef`, `equipRef` and `curVal`;
//! all but the writable setpoints have `his`.
//!
//! ```
//! use hs_core::demo::sized;
//!
//! let entities = sized::entities(1_000);
//! assert_eq!(entities.len(), 1_000 + 20 + 1); // points, equips, sites
//! let store = sized::store(1_000);
//! assert!(store.entity("p1000").is_some() && store.entity("e20").is_some());
//! ```

use crate::observe::targets;
use libhaystack::val::{Dict, Value};

use super::{
    AHU_POINTS, PointSpec, SEED, Shape, SplitMix64, TZ, VAV_POINTS, id_ref, number, plain_ref,
    round2,
};
use crate::store::MemoryStore;

/// Points per equip (the last equip holds the remainder).
pub const POINTS_PER_EQUIP: usize = 50;
/// Equips per site (the last site holds the remainder).
pub const EQUIPS_PER_SITE: usize = 20;
/// One equip in this many is an air handler; the others are VAV boxes.
pub const EQUIPS_PER_AHU: usize = 10;

/// The entities of a building with `points` points: sites first, then each
/// equip followed by its points. The same `points` gives the same entities.
pub fn entities(points: usize) -> Vec<Dict> {
    let equips = points.div_ceil(POINTS_PER_EQUIP);
    let sites = equips.div_ceil(EQUIPS_PER_SITE);
    let mut rng = SplitMix64(SEED);
    let mut out = Vec::with_capacity(points + equips + sites);
    for site in 1..=sites {
        out.push(site_entity(site));
    }
    let mut next_point = 1;
    for equip in 1..=equips {
        let site = (equip - 1) / EQUIPS_PER_SITE + 1;
        let ahu = equip - (equip - 1) % EQUIPS_PER_AHU;
        let is_ahu = ahu == equip;
        let dis = if is_ahu {
            format!("Site {site} AHU-{equip}")
        } else {
            format!("Site {site} VAV-{equip}")
        };
        out.push(equip_entity(equip, site, &dis, (!is_ahu).then_some(ahu)));
        let specs = if is_ahu { AHU_POINTS } else { VAV_POINTS };
        let count = POINTS_PER_EQUIP.min(points + 1 - next_point);
        for n in 0..count {
            let spec = &specs[n % specs.len()];
            let repeat = n / specs.len();
            out.push(point_entity(
                next_point, equip, site, &dis, spec, repeat, &mut rng,
            ));
            next_point += 1;
        }
    }
    out
}

/// A [`MemoryStore`] holding [`entities(points)`](entities).
pub fn store(points: usize) -> MemoryStore {
    let store = MemoryStore::new().with_server_name("hs demo");
    // Generated entities always carry an id Ref, so this cannot fail.
    if let Err(err) = store.update_entities(entities(points)) {
        log::error!(target: targets::STORE, "demo entities rejected: {err}");
    }
    store
}

fn site_entity(site: usize) -> Dict {
    let dis = format!("Site {site}");
    let mut dict = Dict::new();
    dict.insert("id".into(), id_ref(&format!("s{site}"), &dis));
    dict.insert("dis".into(), Value::make_str(&dis));
    dict.insert("site".into(), Value::make_marker());
    dict.insert(
        "area".into(),
        number(50_000.0 + 1_000.0 * site as f64, Some("ft²")),
    );
    dict.insert("tz".into(), Value::make_str(TZ));
    dict
}

fn equip_entity(equip: usize, site: usize, dis: &str, ahu: Option<usize>) -> Dict {
    let mut dict = Dict::new();
    dict.insert("id".into(), id_ref(&format!("e{equip}"), dis));
    dict.insert("dis".into(), Value::make_str(dis));
    dict.insert("equip".into(), Value::make_marker());
    match ahu {
        None => {
            dict.insert("ahu".into(), Value::make_marker());
            dict.insert("airHandlingEquip".into(), Value::make_marker());
        }
        Some(ahu) => {
            dict.insert("vav".into(), Value::make_marker());
            dict.insert("terminalUnit".into(), Value::make_marker());
            dict.insert("ahuRef".into(), plain_ref(&format!("e{ahu}")));
        }
    }
    dict.insert("siteRef".into(), plain_ref(&format!("s{site}")));
    dict.insert("tz".into(), Value::make_str(TZ));
    dict
}

fn point_entity(
    point: usize,
    equip: usize,
    site: usize,
    equip_dis: &str,
    spec: &PointSpec,
    repeat: usize,
    rng: &mut SplitMix64,
) -> Dict {
    let dis = match repeat {
        0 => format!("{equip_dis} {}", spec.dis),
        _ => format!("{equip_dis} {} {}", spec.dis, repeat + 1),
    };
    let mut dict = Dict::new();
    dict.insert("id".into(), id_ref(&format!("p{point}"), &dis));
    dict.insert("dis".into(), Value::make_str(&dis));
    dict.insert("point".into(), Value::make_marker());
    if !spec.writable {
        dict.insert("his".into(), Value::make_marker());
    }
    for marker in spec.markers {
        dict.insert((*marker).into(), Value::make_marker());
    }
    if spec.writable {
        dict.insert("writable".into(), Value::make_marker());
    }
    let (kind, cur_val) = match spec.shape {
        Shape::Analog {
            base,
            amplitude,
            noise,
            min,
            max,
        } => {
            let value = base + amplitude * rng.signed() + noise * rng.signed();
            ("Number", number(round2(value.clamp(min, max)), spec.unit))
        }
        Shape::Setpoint(value) => ("Number", number(value, spec.unit)),
        Shape::Occupied => ("Bool", Value::make_bool(rng.next_u64() % 2 == 0)),
        Shape::Total(per_sample) => (
            "Number",
            number(
                round2(per_sample * 1_000.0 * (1.5 + rng.signed())),
                spec.unit,
            ),
        ),
    };
    dict.insert("kind".into(), Value::make_str(kind));
    if let Some(unit) = spec.unit {
        dict.insert("unit".into(), Value::make_str(unit));
    }
    dict.insert("curVal".into(), cur_val);
    dict.insert("tz".into(), Value::make_str(TZ));
    dict.insert("siteRef".into(), plain_ref(&format!("s{site}")));
    dict.insert("equipRef".into(), plain_ref(&format!("e{equip}")));
    dict
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(entity: &Dict) -> String {
        match entity.get("id") {
            Some(Value::Ref(id)) => id.value().to_owned(),
            other => panic!("no id: {other:?}"),
        }
    }

    #[test]
    fn sizes_layout_and_determinism() {
        let small = entities(1_000);
        assert_eq!(small.len(), 1_021);
        assert_eq!(small, entities(1_000));
        // A partial last equip and site.
        let odd = entities(1_075);
        assert_eq!(odd.len(), 1_075 + 22 + 2);
        assert_eq!(id(odd.last().unwrap()), "p1075");
        let points: Vec<&Dict> = odd.iter().filter(|e| e.contains_key("point")).collect();
        assert_eq!(points.len(), 1_075);
        for point in points {
            for tag in ["kind", "tz", "siteRef", "equipRef", "curVal", "dis"] {
                assert!(point.contains_key(tag), "{tag} in {point:?}");
            }
        }
        let e22 = odd.iter().find(|e| id(e) == "e22").unwrap();
        assert_eq!(e22.get("siteRef"), Some(&plain_ref("s2")));
        assert_eq!(e22.get("ahuRef"), Some(&plain_ref("e21")));
        assert!(entities(0).is_empty());
    }
}
