//! Plugins compiled into Agora. Adding one: a new file here, and one line in [`available`].

mod discourse;
mod github;
mod loomio;
mod opencollective;
mod randomness;
mod testkit;

use std::sync::Arc;

use crate::{Plugin, PluginRegistry, RegistryError};

pub use discourse::Discourse;
pub use github::Github;
pub use loomio::Loomio;
pub use opencollective::OpenCollective;
pub use randomness::Randomness;
pub use testkit::Testkit;

/// Every plugin compiled into this build. A new plugin is one line here.
pub fn available() -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(Randomness::new()),
        Arc::new(crate::vote::VotePlugin::new()),
        Arc::new(Testkit::new()),
        Arc::new(Github::new()),
        Arc::new(Discourse::new()),
        Arc::new(Loomio::new()),
        Arc::new(OpenCollective::new()),
    ]
}

/// A registry holding every built-in plugin loaded by default (tests and embedders).
pub fn all() -> Result<PluginRegistry, RegistryError> {
    let mut r = PluginRegistry::new();
    for p in available().into_iter().filter(|p| p.meta().load_by_default) {
        r.register(p)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registering checks every schema a plugin publishes, so this covers each plugin's.
    #[test]
    fn every_compiled_in_plugin_registers() {
        let mut r = PluginRegistry::new();
        for p in available() {
            let name = p.meta().name;
            r.register(p)
                .unwrap_or_else(|e| panic!("plugin {name} does not register: {e}"));
        }
    }
    /// A plugin that says its network half does nothing on close (`remote_on_close` false)
    /// must answer `None` for every close, or a skipped call would lose platform work.
    #[test]
    fn a_plugin_without_a_close_network_half_answers_none_for_every_close() {
        let http = crate::remote::testing::FakeHttp::default();
        let config = serde_json::json!({});
        for p in available() {
            if p.remote_on_close() {
                continue;
            }
            for spec in &p.meta().processes {
                for state in [
                    serde_json::Value::Null,
                    serde_json::json!({"issue_number": 1}),
                ] {
                    let call = crate::Remote {
                        community: "c",
                        config: &config,
                        http: &http,
                        op: crate::RemoteOp::CloseProcess {
                            process: spec.name,
                            state: &state,
                        },
                    };
                    assert!(
                        p.remote(call).is_none(),
                        "{} says it does nothing on close but has a network half for {}",
                        p.meta().name,
                        spec.name
                    );
                }
            }
        }
    }

    /// Issue 13 §2: every integer or number parameter of every action and process of every
    /// compiled-in plugin, fed `1e3`, `1.5`, 2^64-1 and -2^63-1 through the path Agora really
    /// takes (the registry's compiled schema; `VoteSpec::parse` for votes), is either used as
    /// that number or refused naming the field, never replaced by a default.
    #[test]
    fn numeric_parameters_are_used_or_refused_by_name_never_defaulted() {
        use serde_json::{json, Value};

        let mut registry = PluginRegistry::new();
        for p in available() {
            registry.register(p).unwrap();
        }
        let future = "2030-01-01T00:00:00Z";
        let base = |item: &str| -> Option<Value> {
            Some(match item {
                "randomness.random-int" => json!({}),
                "randomness.set-lucky-number" => json!({"lucky_number": 1}),
                "randomness.delayed-stochastic-vote" => json!({"options": ["a"], "delay": 1}),
                "vote.proposal" | "vote.count" => json!({"closing_at": future}),
                "vote.quadratic" => {
                    json!({"closing_at": future, "options": ["a", "b"], "credits": 4})
                }
                // Wide bounds, so a value tried for one bound does not break the other.
                "vote.score" => {
                    json!({"closing_at": future, "options": ["a", "b"], "min": -10, "max": 100000})
                }
                "vote.choice" | "vote.ranked" | "vote.dot" => {
                    json!({"closing_at": future, "options": ["a", "b"]})
                }
                "github.comment" => json!({"issue_number": 1, "body": "x"}),
                "discourse.create-topic" => json!({"title": "t", "raw": "r"}),
                "discourse.create-post" => json!({"topic_id": 1, "raw": "r"}),
                "discourse.poll" => json!({"title": "t", "options": ["a", "b"]}),
                "loomio.get-poll" => json!({"poll": 1}),
                "loomio.poll" => json!({"title": "t", "closing_at": future}),
                "opencollective.approve-expense" | "opencollective.reject-expense" => {
                    json!({"expense_id": 1})
                }
                _ => return None,
            })
        };
        let values: Vec<(&str, Value)> =
            ["1e3", "1.5", "18446744073709551615", "-9223372036854775809"]
                .iter()
                .map(|text| (*text, serde_json::from_str(text).unwrap()))
                .collect();
        let mut checked = 0;
        for plugin in registry.all() {
            let meta = plugin.meta();
            let mut items: Vec<(&str, &str, &Value, bool)> = Vec::new();
            for a in &meta.actions {
                items.push((a.name, "parameters", &a.parameters_schema, true));
            }
            for p in &meta.processes {
                items.push((p.name, "", &p.parameters_schema, false));
            }
            for (item, at, doc, is_action) in items {
                let name = format!("{}.{item}", meta.name);
                let numeric: Vec<(&String, bool)> = doc["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(key, prop)| {
                        let types: Vec<&str> = match &prop["type"] {
                            Value::String(t) => vec![t.as_str()],
                            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                            _ => vec![],
                        };
                        if types.contains(&"number") {
                            Some((key, false))
                        } else if types.contains(&"integer") {
                            Some((key, true))
                        } else {
                            None
                        }
                    })
                    .collect();
                if numeric.is_empty() {
                    continue;
                }
                let base = base(&name).unwrap_or_else(|| {
                    panic!("{name} has numeric parameters: give it a valid base instance here")
                });
                for (key, integer) in numeric {
                    let field = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    for (text, value) in &values {
                        let mut instance = base.clone();
                        instance[key.as_str()] = value.clone();
                        let outcome: Result<Value, String> = if meta.name == "vote" {
                            crate::vote::VoteSpec::parse(item, &instance)
                                .map(|(spec, _)| {
                                    spec.method_config
                                        .get(key.as_str())
                                        .cloned()
                                        .unwrap_or(Value::Null)
                                })
                                .map_err(|e| e.field)
                        } else {
                            let schema = if is_action {
                                registry.action_schema(meta.name, item)
                            } else {
                                registry.process_schema(meta.name, item)
                            };
                            schema
                                .unwrap()
                                .check(&instance, at)
                                .map(|out| out[key.as_str()].clone())
                                .map_err(|v| v.path)
                        };
                        match outcome {
                            Err(path) => assert_eq!(
                                path,
                                if meta.name == "vote" {
                                    key.clone()
                                } else {
                                    field.clone()
                                },
                                "{name} {key}={text}: refused, but not naming the field"
                            ),
                            Ok(used) => {
                                let expected = value.as_f64().unwrap();
                                if integer {
                                    assert!(
                                        used.is_i64() && used.as_f64() == Some(expected),
                                        "{name} {key}={text}: accepted as {used}"
                                    );
                                } else {
                                    assert_eq!(
                                        used.as_f64(),
                                        Some(expected),
                                        "{name} {key}={text}"
                                    );
                                }
                                assert!(*text == "1e3" || !integer, "{name} {key}={text} accepted");
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
        // 18 numeric parameters in 16 items, four values each (see the table above).
        assert!(checked >= 18 * 4, "only {checked} cases checked");
    }
}
