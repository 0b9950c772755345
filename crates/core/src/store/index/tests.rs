#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use libhaystack::filter::Filter;
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Date, Number, Ref};

use super::keys::{Keyer, Keys, Postings};
use super::plan::Candidates;
use super::*;
use crate::store::query::Node;

fn entity(tags: &[&str]) -> Dict {
    let mut dict = Dict::new();
    for tag in tags {
        dict.insert((*tag).to_owned(), Value::make_marker());
    }
    dict
}

fn with(mut dict: Dict, name: &str, value: Value) -> Dict {
    dict.insert(name.to_owned(), value);
    dict
}

/// An index and the entities it indexes.
struct Fixture {
    index: TagIndex,
    entities: Vec<Arc<Dict>>,
}

impl Fixture {
    fn push(&mut self, entity: Dict) {
        self.entities.push(Arc::new(entity));
        self.index
            .add(self.entities.len() as u32 - 1, &self.entities);
    }

    fn replace(&mut self, slot: usize, entity: Dict) {
        let old = std::mem::replace(&mut self.entities[slot], Arc::new(entity));
        self.index.update(slot as u32, &old, &self.entities);
    }
}

fn fixture() -> Fixture {
    let mut fixture = Fixture {
        index: TagIndex::default(),
        entities: Vec::new(),
    };
    let e1 = || Value::from(Ref::from("e1"));
    fixture.push(entity(&["site"]));
    fixture.push(with(entity(&["point", "temp"]), "equipRef", e1()));
    fixture.push(with(
        entity(&["point", "temp", "sp"]),
        "equipRef",
        Value::from(Ref::from("e2")),
    ));
    fixture.push(with(entity(&["point", "flow"]), "equipRef", e1()));
    fixture
}

fn plan(fixture: &Fixture, text: &str) -> (Candidates<'static>, bool) {
    let filter = Filter::try_from(text).unwrap();
    let plan = fixture
        .index
        .plan(&Node::compile(&filter), &fixture.entities);
    let candidates = match &plan.candidates {
        Candidates::All => Candidates::All,
        Candidates::Except(slots) => Candidates::Except(Cow::Owned(slots.to_vec())),
        Candidates::Only(_) | Candidates::Meet { .. } => Candidates::Only(Cow::Owned(
            plan.slots(fixture.entities.len())
                .map(|slot| slot as u32)
                .collect(),
        )),
    };
    (candidates, plan.exact)
}

fn only(slots: &[u32]) -> Candidates<'static> {
    Candidates::Only(Cow::Owned(slots.to_vec()))
}

fn except(slots: &[u32]) -> Candidates<'static> {
    Candidates::Except(Cow::Owned(slots.to_vec()))
}

#[test]
fn and_of_markers_is_an_exact_intersection() {
    let fixture = fixture();
    assert_eq!(plan(&fixture, "point and temp"), (only(&[1, 2]), true));
    assert_eq!(plan(&fixture, "point and nothing"), (only(&[]), true));
}

#[test]
fn missing_tags_subtract_and_or_unions() {
    let fixture = fixture();
    assert_eq!(plan(&fixture, "site or flow"), (only(&[0, 3]), true));
    assert_eq!(plan(&fixture, "point and not sp"), (only(&[1, 3]), true));
    assert_eq!(
        plan(&fixture, "point and (temp or flow)"),
        (only(&[1, 2, 3]), true)
    );
    assert_eq!(plan(&fixture, "not point"), (except(&[1, 2, 3]), true));
    assert_eq!(
        plan(&fixture, "site or not point"),
        (except(&[1, 2, 3]), true)
    );
}

#[test]
fn equality_uses_value_postings_exactly() {
    let fixture = fixture();
    assert_eq!(plan(&fixture, "equipRef==@e1"), (only(&[1, 3]), true));
    assert_eq!(plan(&fixture, "equipRef==@e1 and temp"), (only(&[1]), true));
    assert_eq!(
        plan(&fixture, "equipRef==@nope and temp"),
        (only(&[]), true)
    );
    // Paths and orderings need the first tag; `^def` needs evaluation.
    assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[]), true));
    assert_eq!(plan(&fixture, "equipRef!=@e1"), (only(&[1, 2, 3]), false));
    assert_eq!(plan(&fixture, "curVal < 3"), (only(&[]), true));
    assert_eq!(plan(&fixture, "^point"), (Candidates::All, false));
}

#[test]
fn paths_resolve_backwards_from_their_targets() {
    let mut fixture = fixture();
    let id = |id: &str| Value::from(Ref::from(id));
    fixture.push(with(
        with(entity(&["equip", "ahu"]), "id", id("e1")),
        "siteRef",
        id("s"),
    ));
    fixture.push(with(entity(&["equip"]), "id", id("e2")));
    fixture.push(with(
        Dict::new(),
        "equipRef",
        Value::make_dict(entity(&["ahu"])),
    ));
    // Points of e1 (the ahu), and the dict that may hold the rest of the path.
    assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[1, 3, 6]), false));
    assert_eq!(
        plan(&fixture, "equipRef->siteRef==@s"),
        (only(&[1, 3, 6]), false)
    );
    assert_eq!(
        plan(&fixture, "equipRef->equip"),
        (only(&[1, 2, 3, 6]), false)
    );
    assert_eq!(plan(&fixture, "equipRef->siteRef==@x"), (only(&[6]), false));
    // Without a dict (or list) among the sources, the plan is exact.
    fixture.replace(6, with(Dict::new(), "equipRef", id("e2")));
    assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[1, 3]), true));
    assert_eq!(
        plan(&fixture, "equipRef->equip"),
        (only(&[1, 2, 3, 6]), true)
    );
    assert_eq!(plan(&fixture, "equipRef->siteRef==@x"), (only(&[]), true));
}

#[test]
fn number_orderings_use_the_ordered_numbers_of_their_unit() {
    let mut fixture = fixture();
    let f = |value: f64| Value::from(Number::make_with_unit(value, get_unit_or_default("°F")));
    fixture.push(with(entity(&["point"]), "curVal", f(68.0)));
    fixture.push(with(entity(&["point"]), "curVal", f(72.5)));
    fixture.push(with(
        entity(&["point"]),
        "curVal",
        Value::from(Number::make(80.0)),
    ));
    fixture.push(with(
        entity(&["point"]),
        "curVal",
        Value::make_list(vec![f(-0.0), f(90.0)]),
    ));
    assert_eq!(plan(&fixture, "curVal > 70°F"), (only(&[5, 7]), true));
    assert_eq!(plan(&fixture, "curVal >= 72.5°F"), (only(&[5, 7]), true));
    assert_eq!(plan(&fixture, "curVal < 72.5°F"), (only(&[4, 7]), true));
    assert_eq!(plan(&fixture, "curVal <= 0°F"), (only(&[7]), true));
    assert_eq!(plan(&fixture, "curVal > 70"), (only(&[6]), true));
    assert_eq!(plan(&fixture, "curVal > 70°C"), (only(&[]), true));
    // A write moves the number.
    fixture.replace(4, with(entity(&["point"]), "curVal", f(75.0)));
    assert_eq!(plan(&fixture, "curVal > 70°F"), (only(&[4, 5, 7]), true));
    assert_eq!(plan(&fixture, "site and curVal > 70°F"), (only(&[]), true));
    // With far fewer other candidates than numbers, the ordering is
    // evaluated instead of collected.
    for value in 0..32 {
        fixture.push(with(Dict::new(), "curVal", f(f64::from(value))));
    }
    assert_eq!(
        plan(&fixture, "site and curVal > 70°F"),
        (only(&[0]), false)
    );
}

#[test]
fn updates_move_only_the_changed_postings() {
    let mut fixture = fixture();
    fixture.replace(
        3,
        with(entity(&["point"]), "equipRef", Value::from(Ref::from("e2"))),
    );
    assert_eq!(fixture.index.postings("flow"), &[] as &[u32]);
    assert_eq!(fixture.index.postings("point"), &[1, 2, 3]);
    assert_eq!(plan(&fixture, "equipRef==@e2"), (only(&[2, 3]), true));
    assert_eq!(plan(&fixture, "equipRef==@e1"), (only(&[1]), true));
}

#[test]
fn a_collision_makes_a_key_mixed_and_its_slots_candidates() {
    let mut fixture = fixture();
    let a = Value::make_str("a");
    let b = Value::make_str("b");
    fixture.push(with(Dict::new(), "dis", a.clone()));
    fixture.push(with(Dict::new(), "dis", b.clone()));
    // File b's slot under a's key, as a collision would.
    let key = fixture.index.keyer.key(&a).unwrap();
    let keys: Keys<'_> = [(key, &b)].into_iter().collect();
    let TagIndex { tags, keyer } = &mut fixture.index;
    let dis = tags.get_mut("dis").unwrap();
    insert_key(keyer, dis, key, 5, "dis", &keys, &fixture.entities);
    assert!(matches!(dis.values.get(&key), Some(Postings::Mixed(_))));
    assert_eq!(plan(&fixture, "dis==\"a\""), (only(&[4, 5]), false));
    // A lookup whose value only shares its key with others finds nothing.
    let key_b = fixture.index.keyer.key(&b).unwrap();
    let dis = fixture.index.tags.get_mut("dis").unwrap();
    dis.values.insert(key_b, Postings::One(4));
    assert_eq!(plan(&fixture, "dis==\"b\""), (only(&[]), true));
}

#[test]
fn number_keys_follow_number_equality() {
    let keyer = Keyer::default();
    let key = |value: Value| keyer.key(&value);
    let number = |value: f64, unit: Option<&str>| {
        Value::from(match unit {
            Some(unit) => Number::make_with_unit(value, get_unit_or_default(unit)),
            None => Number::make(value),
        })
    };
    assert_eq!(key(number(0.0, None)), key(number(-0.0, None)));
    assert_ne!(key(number(1.0, Some("°F"))), key(number(1.0, None)));
    assert_ne!(key(number(1.0, Some("°F"))), key(number(1.0, Some("°C"))));
    assert_eq!(key(number(f64::NAN, None)), None);
    // A Ref's dis is not part of its identity; kinds never share a key.
    assert_eq!(
        key(Value::from(Ref::from("a"))),
        key(Value::from(Ref::make("a", Some("A"))))
    );
    assert_ne!(key(Value::make_str("a")), key(Value::from(Ref::from("a"))));
}

#[test]
fn str_and_date_orderings_use_the_ordered_values() {
    let mut fixture = fixture();
    let date = |text: &str| Value::from(text.parse::<Date>().unwrap());
    fixture.push(with(
        entity(&["point"]),
        "dis",
        Value::make_str("AHU-1 temperature"),
    ));
    fixture.push(with(
        entity(&["point"]),
        "dis",
        Value::make_str("AHU-1 temperaturf"),
    ));
    fixture.push(with(entity(&["point"]), "dis", Value::make_str("Boiler")));
    fixture.push(with(entity(&["point"]), "installed", date("2020-05-01")));
    fixture.push(with(entity(&["point"]), "installed", date("2024-01-01")));
    assert_eq!(plan(&fixture, "dis >= \"B\""), (only(&[6]), true));
    // Both share the boundary's first 8 bytes: candidates, evaluated.
    assert_eq!(
        plan(&fixture, "dis < \"AHU-1 temperaturf\""),
        (only(&[4, 5]), false)
    );
    assert_eq!(plan(&fixture, "installed < 2024-01-01"), (only(&[7]), true));
    assert_eq!(
        plan(&fixture, "installed >= 2024-01-01"),
        (only(&[8]), true)
    );
    // Values of another kind never compare.
    assert_eq!(plan(&fixture, "installed > \"2020\""), (only(&[]), true));
}

#[test]
fn explain_names_each_part_and_its_candidates() {
    let fixture = fixture();
    let filter = Filter::try_from("point and equipRef==@e1 and not sp").unwrap();
    let text = fixture
        .index
        .explain(&Node::compile(&filter), &fixture.entities);
    assert_eq!(
        text,
        "and: intersection, 2 candidates, exact\n\
         \x20 point: tag postings, 3 candidates, exact\n\
         \x20 equipRef == @e1: value postings, 2 candidates, exact\n\
         \x20 not sp: all but the tag postings, 3 candidates, exact\n"
    );
}
