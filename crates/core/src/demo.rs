//! A deterministic demo building: one site, air handlers, VAV boxes and an
//! electric meter, about 1,000 points, each with a week of 15-minute history.
//!
//! The tags and values come from a fixed-seed generator, so every build holds
//! the same entities and the same sample values; only the timestamps follow the
//! `end` instant ([`building`] uses the current time, [`building_at`] any).
//! [`sized`] generates a building of any number of points (without history).
//!
//! ```
//! let store = hs_core::demo::building_at("2024-01-08T00:00:00Z".parse().unwrap());
//! assert!(store.len() > 1_000);
//! assert_eq!(store.history_len("demo-ahu1-dat"), hs_core::demo::HISTORY_SAMPLES);
//! ```

pub mod sized;

use crate::observe::targets;
use chrono::{TimeZone, Utc};
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Coord, Dict, Number, Ref, Value};

use crate::store::{MemoryStore, Sample};

/// The generator seed.
pub const SEED: u64 = 0x6873_2d64_656d_6f21;
/// Air handlers in the building.
pub const AHU_COUNT: usize = 4;
/// VAV boxes fed by each air handler.
pub const VAVS_PER_AHU: usize = 15;
/// History samples per point: one week at 15-minute intervals.
pub const HISTORY_SAMPLES: usize = 7 * 24 * 4;
/// Milliseconds between history samples.
pub const SAMPLE_INTERVAL_MS: i64 = 15 * 60 * 1_000;
/// The site's id.
pub const SITE_ID: &str = "demo-site";
/// The site's timezone (Haystack city name).
pub const TZ: &str = "New_York";

/// The demo building with history ending at the last 15-minute boundary.
pub fn building() -> MemoryStore {
    building_at(Utc::now())
}

/// The demo building with history ending at `end` (rounded down to 15 minutes).
pub fn building_at(end: chrono::DateTime<Utc>) -> MemoryStore {
    let end_ms = end.timestamp_millis().div_euclid(SAMPLE_INTERVAL_MS) * SAMPLE_INTERVAL_MS;
    let mut generator = Generator {
        rng: SplitMix64(SEED),
        end_ms,
        entities: Vec::new(),
        history: Vec::new(),
    };
    generator.site();
    for ahu in 1..=AHU_COUNT {
        generator.ahu(ahu);
        for vav in 1..=VAVS_PER_AHU {
            generator.vav(ahu, vav);
        }
    }
    generator.meter();

    let store = MemoryStore::new().with_server_name("hs demo");
    let Generator {
        entities, history, ..
    } = generator;
    // Generated entities always carry an id Ref, so these cannot fail.
    if let Err(err) = store.update_entities(entities) {
        log::error!(target: targets::STORE, "demo entities rejected: {err}");
    }
    for (id, samples) in history {
        if let Err(err) = store.set_history_millis(&id, samples) {
            log::error!(target: targets::STORE, "demo history rejected: {err}");
        }
    }
    store
}

/// SplitMix64: tiny, fast, and stable across versions (unlike `StdRng`).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// How a point's values move over a day.
#[derive(Clone, Copy)]
enum Shape {
    /// `base + amplitude * daily curve + noise`.
    Analog {
        base: f64,
        amplitude: f64,
        noise: f64,
        min: f64,
        max: f64,
    },
    /// A constant setpoint.
    Setpoint(f64),
    /// On during occupied hours (06:00 to 19:00 local).
    Occupied,
    /// An ever-increasing total with the given average per sample.
    Total(f64),
}

struct PointSpec {
    suffix: &'static str,
    dis: &'static str,
    markers: &'static [&'static str],
    unit: Option<&'static str>,
    writable: bool,
    shape: Shape,
}

const fn analog(base: f64, amplitude: f64, noise: f64, min: f64, max: f64) -> Shape {
    Shape::Analog {
        base,
        amplitude,
        noise,
        min,
        max,
    }
}

const fn spec(
    suffix: &'static str,
    dis: &'static str,
    markers: &'static [&'static str],
    unit: Option<&'static str>,
    writable: bool,
    shape: Shape,
) -> PointSpec {
    PointSpec {
        suffix,
        dis,
        markers,
        unit,
        writable,
        shape,
    }
}

const F: Option<&str> = Some("°F");
const PCT: Option<&str> = Some("%");
const CFM: Option<&str> = Some("cfm");

const AHU_POINTS: &[PointSpec] = &[
    spec(
        "dat",
        "Discharge Air Temp",
        &["sensor", "discharge", "air", "temp"],
        F,
        false,
        analog(55.0, 2.0, 0.6, 48.0, 65.0),
    ),
    spec(
        "dat-sp",
        "Discharge Air Temp Setpoint",
        &["sp", "discharge", "air", "temp"],
        F,
        true,
        Shape::Setpoint(55.0),
    ),
    spec(
        "rat",
        "Return Air Temp",
        &["sensor", "return", "air", "temp"],
        F,
        false,
        analog(72.0, 1.5, 0.4, 65.0, 80.0),
    ),
    spec(
        "mat",
        "Mixed Air Temp",
        &["sensor", "mixed", "air", "temp"],
        F,
        false,
        analog(62.0, 4.0, 0.8, 45.0, 75.0),
    ),
    spec(
        "rh",
        "Return Air Humidity",
        &["sensor", "return", "air", "humidity"],
        Some("%RH"),
        false,
        analog(45.0, 5.0, 1.0, 20.0, 70.0),
    ),
    spec(
        "fan-cmd",
        "Supply Fan Run Command",
        &["cmd", "discharge", "fan", "run"],
        None,
        false,
        Shape::Occupied,
    ),
    spec(
        "fan-status",
        "Supply Fan Run Status",
        &["sensor", "discharge", "fan", "run"],
        None,
        false,
        Shape::Occupied,
    ),
    spec(
        "fan-speed",
        "Supply Fan Speed",
        &["cmd", "discharge", "fan", "speed"],
        PCT,
        false,
        analog(60.0, 25.0, 3.0, 0.0, 100.0),
    ),
    spec(
        "oa-damper",
        "Outside Air Damper Command",
        &["cmd", "outside", "air", "damper"],
        PCT,
        false,
        analog(30.0, 15.0, 2.0, 0.0, 100.0),
    ),
    spec(
        "chw-valve",
        "Chilled Water Valve Command",
        &["cmd", "chilled", "water", "valve"],
        PCT,
        false,
        analog(40.0, 35.0, 4.0, 0.0, 100.0),
    ),
    spec(
        "hw-valve",
        "Hot Water Valve Command",
        &["cmd", "hot", "water", "valve"],
        PCT,
        false,
        analog(10.0, -10.0, 2.0, 0.0, 100.0),
    ),
    spec(
        "static",
        "Duct Static Pressure",
        &["sensor", "discharge", "duct", "air", "pressure"],
        Some("inH₂O"),
        false,
        analog(1.5, 0.2, 0.05, 0.0, 3.0),
    ),
    spec(
        "static-sp",
        "Duct Static Pressure Setpoint",
        &["sp", "discharge", "duct", "air", "pressure"],
        Some("inH₂O"),
        true,
        Shape::Setpoint(1.5),
    ),
    spec(
        "flow",
        "Discharge Airflow",
        &["sensor", "discharge", "air", "flow"],
        CFM,
        false,
        analog(12_000.0, 4_000.0, 300.0, 0.0, 20_000.0),
    ),
    spec(
        "oat",
        "Outside Air Temp",
        &["sensor", "outside", "air", "temp"],
        F,
        false,
        analog(48.0, 12.0, 1.0, 10.0, 100.0),
    ),
    spec(
        "filter-dp",
        "Filter Differential Pressure",
        &["sensor", "filter", "air", "pressure"],
        Some("inH₂O"),
        false,
        analog(0.6, 0.05, 0.02, 0.0, 2.0),
    ),
];

const VAV_POINTS: &[PointSpec] = &[
    spec(
        "zat",
        "Zone Air Temp",
        &["sensor", "zone", "air", "temp"],
        F,
        false,
        analog(71.0, 2.0, 0.5, 60.0, 85.0),
    ),
    spec(
        "zat-cool-sp",
        "Zone Air Temp Cooling Setpoint",
        &["sp", "zone", "air", "temp", "cooling"],
        F,
        true,
        Shape::Setpoint(74.0),
    ),
    spec(
        "zat-heat-sp",
        "Zone Air Temp Heating Setpoint",
        &["sp", "zone", "air", "temp", "heating"],
        F,
        true,
        Shape::Setpoint(68.0),
    ),
    spec(
        "zat-eff-sp",
        "Zone Air Temp Effective Setpoint",
        &["sp", "zone", "air", "temp", "effective"],
        F,
        false,
        analog(71.0, 1.0, 0.0, 60.0, 80.0),
    ),
    spec(
        "dat",
        "Discharge Air Temp",
        &["sensor", "discharge", "air", "temp"],
        F,
        false,
        analog(60.0, 5.0, 1.0, 45.0, 95.0),
    ),
    spec(
        "flow",
        "Discharge Airflow",
        &["sensor", "discharge", "air", "flow"],
        CFM,
        false,
        analog(400.0, 200.0, 30.0, 0.0, 1_200.0),
    ),
    spec(
        "flow-sp",
        "Discharge Airflow Setpoint",
        &["sp", "discharge", "air", "flow"],
        CFM,
        false,
        analog(400.0, 200.0, 0.0, 0.0, 1_200.0),
    ),
    spec(
        "flow-max-sp",
        "Maximum Airflow Setpoint",
        &["sp", "max", "discharge", "air", "flow"],
        CFM,
        true,
        Shape::Setpoint(900.0),
    ),
    spec(
        "flow-min-sp",
        "Minimum Airflow Setpoint",
        &["sp", "min", "discharge", "air", "flow"],
        CFM,
        true,
        Shape::Setpoint(150.0),
    ),
    spec(
        "damper",
        "Damper Command",
        &["cmd", "discharge", "air", "damper"],
        PCT,
        false,
        analog(45.0, 30.0, 4.0, 0.0, 100.0),
    ),
    spec(
        "reheat",
        "Reheat Valve Command",
        &["cmd", "reheat", "hot", "water", "valve"],
        PCT,
        false,
        analog(15.0, -15.0, 3.0, 0.0, 100.0),
    ),
    spec(
        "occ",
        "Occupancy Sensor",
        &["sensor", "occupied"],
        None,
        false,
        Shape::Occupied,
    ),
    spec(
        "co2",
        "Zone CO2",
        &["sensor", "zone", "air", "co2"],
        Some("ppm"),
        false,
        analog(650.0, 250.0, 40.0, 400.0, 2_000.0),
    ),
    spec(
        "rh",
        "Zone Humidity",
        &["sensor", "zone", "air", "humidity"],
        Some("%RH"),
        false,
        analog(42.0, 4.0, 1.0, 20.0, 70.0),
    ),
    spec(
        "occ-mode",
        "Occupied Mode Command",
        &["cmd", "occupied"],
        None,
        true,
        Shape::Occupied,
    ),
];

const METER_POINTS: &[PointSpec] = &[
    spec(
        "power",
        "Electric Power",
        &["sensor", "elec", "power"],
        Some("kW"),
        false,
        analog(320.0, 180.0, 15.0, 50.0, 900.0),
    ),
    spec(
        "demand",
        "Electric Demand",
        &["sensor", "elec", "demand"],
        Some("kW"),
        false,
        analog(340.0, 170.0, 10.0, 50.0, 900.0),
    ),
    spec(
        "energy",
        "Electric Energy",
        &["sensor", "elec", "energy"],
        Some("kWh"),
        false,
        Shape::Total(80.0),
    ),
    spec(
        "volt",
        "Voltage",
        &["sensor", "elec", "volt"],
        Some("V"),
        false,
        analog(480.0, 3.0, 1.0, 440.0, 520.0),
    ),
    spec(
        "current",
        "Current",
        &["sensor", "elec", "current"],
        Some("A"),
        false,
        analog(400.0, 220.0, 15.0, 0.0, 1_200.0),
    ),
    spec(
        "pf",
        "Power Factor",
        &["sensor", "elec", "pf"],
        None,
        false,
        analog(0.92, 0.03, 0.01, 0.7, 1.0),
    ),
];

struct Generator {
    rng: SplitMix64,
    end_ms: i64,
    entities: Vec<Dict>,
    history: Vec<(String, Vec<Sample>)>,
}

fn id_ref(id: &str, dis: &str) -> Value {
    Value::from(Ref::make(id, Some(dis)))
}

fn plain_ref(id: &str) -> Value {
    Value::from(Ref::from(id))
}

fn number(value: f64, unit: Option<&str>) -> Value {
    match unit {
        Some(unit) => Value::from(Number::make_with_unit(value, get_unit_or_default(unit))),
        None => Value::make_number(value),
    }
}

impl Generator {
    fn site(&mut self) {
        let mut site = Dict::new();
        site.insert("id".into(), id_ref(SITE_ID, "Demo Office"));
        site.insert("dis".into(), Value::make_str("Demo Office"));
        site.insert("site".into(), Value::make_marker());
        site.insert("area".into(), number(120_000.0, Some("ft²")));
        site.insert("geoCity".into(), Value::make_str("Richmond"));
        site.insert("geoState".into(), Value::make_str("VA"));
        site.insert("geoCountry".into(), Value::make_str("US"));
        site.insert(
            "geoCoord".into(),
            Value::make_coord(Coord::make(37.5407, -77.436)),
        );
        site.insert("tz".into(), Value::make_str(TZ));
        self.entities.push(site);
    }

    fn equip(&mut self, id: &str, dis: &str, markers: &[&str], parent: Option<&str>) {
        let mut equip = Dict::new();
        equip.insert("id".into(), id_ref(id, dis));
        equip.insert("dis".into(), Value::make_str(dis));
        equip.insert("equip".into(), Value::make_marker());
        for marker in markers {
            equip.insert((*marker).into(), Value::make_marker());
        }
        equip.insert("siteRef".into(), plain_ref(SITE_ID));
        if let Some(parent) = parent {
            equip.insert("ahuRef".into(), plain_ref(parent));
        }
        equip.insert("tz".into(), Value::make_str(TZ));
        self.entities.push(equip);
    }

    fn ahu(&mut self, ahu: usize) {
        let id = format!("demo-ahu{ahu}");
        let dis = format!("AHU-{ahu}");
        self.equip(&id, &dis, &["ahu", "airHandlingEquip"], None);
        for point in AHU_POINTS {
            self.point(&id, &dis, point);
        }
    }

    fn vav(&mut self, ahu: usize, vav: usize) {
        let id = format!("demo-vav{ahu}-{vav:02}");
        let dis = format!("VAV-{ahu}-{vav:02}");
        let ahu_id = format!("demo-ahu{ahu}");
        self.equip(&id, &dis, &["vav", "terminalUnit"], Some(&ahu_id));
        for point in VAV_POINTS {
            self.point(&id, &dis, point);
        }
    }

    fn meter(&mut self) {
        let id = "demo-meter";
        let dis = "Main Electric Meter";
        self.equip(id, dis, &["meter", "elec", "siteMeter"], None);
        for point in METER_POINTS {
            self.point(id, dis, point);
        }
    }

    fn point(&mut self, equip_id: &str, equip_dis: &str, spec: &PointSpec) {
        let id = format!("{equip_id}-{}", spec.suffix);
        let dis = format!("{equip_dis} {}", spec.dis);
        let mut point = Dict::new();
        point.insert("id".into(), id_ref(&id, &dis));
        point.insert("dis".into(), Value::make_str(&dis));
        point.insert("point".into(), Value::make_marker());
        point.insert("his".into(), Value::make_marker());
        for marker in spec.markers {
            point.insert((*marker).into(), Value::make_marker());
        }
        if spec.writable {
            point.insert("writable".into(), Value::make_marker());
        }
        let is_bool = matches!(spec.shape, Shape::Occupied);
        point.insert(
            "kind".into(),
            Value::make_str(if is_bool { "Bool" } else { "Number" }),
        );
        if let Some(unit) = spec.unit {
            point.insert("unit".into(), Value::make_str(unit));
        }
        point.insert("tz".into(), Value::make_str(TZ));
        point.insert("siteRef".into(), plain_ref(SITE_ID));
        point.insert("equipRef".into(), plain_ref(equip_id));

        let samples = self.samples(spec);
        if let Some(last) = samples.last() {
            point.insert("curVal".into(), last.val.clone());
            if let Ok(tz) = libhaystack::timezone::find_timezone(TZ) {
                if let Some(ts) = tz.timestamp_millis_opt(last.ts).single() {
                    point.insert(
                        "curTs".into(),
                        Value::from(libhaystack::val::DateTime::from(ts)),
                    );
                }
            }
        }
        self.history.push((id, samples));
        self.entities.push(point);
    }

    fn samples(&mut self, spec: &PointSpec) -> Vec<Sample> {
        let start = self.end_ms - (HISTORY_SAMPLES as i64 - 1) * SAMPLE_INTERVAL_MS;
        // A per-point phase shift so that points do not move in lockstep.
        let phase = self.rng.signed() * 0.5;
        let mut total = 0.0;
        (0..HISTORY_SAMPLES as i64)
            .map(|n| {
                let ts = start + n * SAMPLE_INTERVAL_MS;
                // Local hour in New York standard time; DST is ignored for synthesis.
                let hour = ((ts / 3_600_000 - 5).rem_euclid(24)) as f64
                    + (ts % 3_600_000) as f64 / 3_600_000.0;
                let occupied = (6.0..19.0).contains(&hour);
                let val = match spec.shape {
                    Shape::Analog {
                        base,
                        amplitude,
                        noise,
                        min,
                        max,
                    } => {
                        let daily = (std::f64::consts::TAU * (hour - 9.0 + phase) / 24.0).sin();
                        let value = base + amplitude * daily + noise * self.rng.signed();
                        number(round2(value.clamp(min, max)), spec.unit)
                    }
                    Shape::Setpoint(value) => number(value, spec.unit),
                    Shape::Occupied => Value::make_bool(occupied),
                    Shape::Total(per_sample) => {
                        let load = if occupied { 1.4 } else { 0.6 };
                        total += per_sample * load * (1.0 + 0.1 * self.rng.signed());
                        number(round2(total), spec.unit)
                    }
                };
                Sample { ts, val }
            })
            .collect()
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_known_to_libhaystack() {
        let specs = AHU_POINTS.iter().chain(VAV_POINTS).chain(METER_POINTS);
        for unit in specs.filter_map(|spec| spec.unit).chain(["ft²"]) {
            assert!(libhaystack::units::get_unit(unit).is_some(), "{unit}");
        }
    }

    #[test]
    fn generator_is_deterministic() {
        let mut a = SplitMix64(SEED);
        let mut b = SplitMix64(SEED);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let value = a.signed();
        assert!((-1.0..1.0).contains(&value));
    }
}
