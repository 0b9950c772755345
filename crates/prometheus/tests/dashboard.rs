//! `docs/grafana/hs-overview.json` queries only what the exporter produces.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::{BTreeMap, BTreeSet};

use hs_prometheus::{ExpositionFormat, PrometheusMetrics};
use serde_json::Value;

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/hs-overview.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every PromQL string in the dashboard: panel target `expr`s and the
/// template variables' queries.
fn queries(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            // A data-source variable's `query` is a plugin id, not PromQL.
            Value::Object(map) if map.get("type").is_some_and(|t| t == "datasource") => {}
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("expr" | "definition", Value::String(q)) => out.push(q.clone()),
                        ("query", Value::String(q)) => out.push(q.clone()),
                        _ => walk(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// The `haystack_*` metric names in a query, each with the label names its
/// selector matches on (`name{a="x",b=~"y"}` gives `a`, `b`).
fn selectors(query: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("haystack_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut labels = Vec::new();
        let after = &tail[end..];
        if let Some(inner) = after.strip_prefix('{') {
            let close = inner.find('}').expect("selector closes");
            for matcher in inner[..close].split(',').filter(|m| !m.trim().is_empty()) {
                let key_end = matcher.find(['=', '!']).expect("label matcher");
                labels.push(matcher[..key_end].trim().to_owned());
            }
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

/// Sample name -> label names, from a scrape with every event fired once.
fn exposed() -> BTreeMap<String, BTreeSet<String>> {
    let metrics = PrometheusMetrics::new();
    common::fire_everything(&metrics);
    let text = metrics.encode(ExpositionFormat::OpenMetrics).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sample in common::parse(&text) {
        out.entry(sample.name)
            .or_default()
            .extend(sample.labels.into_iter().map(|(k, _)| k));
    }
    out
}

/// The labels Prometheus attaches to every scraped sample.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

#[test]
fn every_queried_metric_and_label_is_exposed() {
    let exposed = exposed();
    let queries = queries(&dashboard());
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used_families = BTreeSet::new();
    for query in &queries {
        let found = selectors(query);
        assert!(!found.is_empty(), "query uses no haystack_ metric: {query}");
        for (name, labels) in found {
            let exposed_labels = exposed
                .get(&name)
                .unwrap_or_else(|| panic!("{name} (in `{query}`) is not exposed"));
            // `job` and `instance` are the target labels Prometheus adds.
            for label in labels
                .into_iter()
                .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
            {
                assert!(
                    exposed_labels.contains(&label),
                    "{name} has no label {label} (in `{query}`)"
                );
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            used_families.insert(family.to_owned());
        }
    }
    // The dashboard shows every metric the exporter has.
    let families: BTreeSet<String> = exposed
        .keys()
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
                .to_owned()
        })
        .collect();
    assert_eq!(used_families, families);
}

#[test]
fn the_check_catches_a_misspelt_metric() {
    let exposed = exposed();
    let found = selectors(r#"rate(haystack_request_total{side=~"$side"}[5m])"#);
    assert_eq!(
        found,
        vec![("haystack_request_total".to_owned(), vec!["side".to_owned()])]
    );
    assert!(!exposed.contains_key("haystack_request_total"));
    let found = selectors(r#"sum(haystack_ws_connections_active{transport="ws"})"#);
    assert!(!exposed["haystack_ws_connections_active"].contains(&found[0].1[0]));
}

#[test]
fn dashboard_is_an_importable_grafana_model() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "hs-overview");
    assert!(dashboard["title"].as_str().unwrap().contains("hs"));
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 30);
    // File provisioning does not fill `__inputs`: the data source is a
    // template variable, so the file works both imported and provisioned.
    let text = dashboard.to_string();
    assert!(dashboard.get("__inputs").is_none());
    assert!(
        !text.contains("${DS_"),
        "an import-only data source input is used"
    );

    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let names: Vec<&str> = variables
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["datasource", "job", "instance", "side", "transport"]
    );
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    // One side at a time: client and server both time the same request, so
    // "All" would count every request twice and mix two latencies.
    let side = variable("side");
    assert_eq!(side["multi"], false);
    assert_eq!(side["includeAll"], false);
    assert_eq!(side["current"]["value"], "server");
    for name in ["job", "instance", "side", "transport"] {
        assert_eq!(
            variable(name)["datasource"]["uid"],
            "${datasource}",
            "{name}"
        );
    }

    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate id");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {} overflows the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
            let expr = target["expr"].as_str().unwrap();
            for variable in ["$job", "$instance"] {
                assert!(expr.contains(variable), "{expr} ignores {variable}");
            }
            assert!(expr.contains(r#"side="$side""#), "{expr} mixes the sides");
            if expr.contains("haystack_request_duration") || expr.contains("haystack_errors") {
                assert!(expr.contains("$transport"), "{expr} ignores $transport");
            }
        }
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "p50 latency by op",
        "p99 latency by op",
        "Active WebSocket connections",
    ] {
        assert!(titles.contains(&wanted), "{wanted} missing");
    }
    // The error panels say when the rate is bad.
    for title in ["Errors / s", "Error ratio", "Errors by type"] {
        let panel = panels.iter().find(|p| p["title"] == title).unwrap();
        let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{title} has no thresholds"));
        assert!(
            steps
                .iter()
                .any(|step| step["color"] == "red" && step["value"].is_number()),
            "{title}"
        );
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // promtool parses each panel query as a recording rule, with Grafana's
    // variables replaced by what Grafana would send.
    let mut rules = String::from("groups:\n  - name: hs_dashboard\n    rules:\n");
    let dashboard = dashboard();
    let exprs: Vec<String> = queries(&dashboard)
        .into_iter()
        .filter(|q| !q.starts_with("label_values("))
        .collect();
    for (index, expr) in exprs.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$side", "server")
            .replace("$transport", ".*")
            .replace("$job", ".*")
            .replace("$instance", ".*");
        assert!(!expr.contains('\''), "{expr}");
        rules.push_str(&format!(
            "      - record: hs:dashboard_query_{index}\n        expr: '{expr}'\n"
        ));
    }
    let path = std::env::temp_dir().join(format!("hs-dashboard-rules-{}.yml", std::process::id()));
    std::fs::write(&path, rules).unwrap();
    let output = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run promtool ({error}): install it with \
                 `apt-get install -y --no-install-recommends prometheus`"
            )
        });
    std::fs::remove_file(&path).unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool check rules:\n{report}");
    assert!(
        report.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{report}"
    );
}
