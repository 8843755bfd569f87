//! `randomness`: Metagov's example plugin, behaving as Metagov's does.
//!
//! Actions `random-int` and `set-lucky-number` (neither public: Metagov's public action route
//! answers 404 for both); the process `delayed-stochastic-vote`, which stays pending for
//! `delay` minutes and then completes by itself with a random winner (or earlier, when the
//! driver closes it).
//!
//! The schemas are Metagov's, field by field: required fields, no defaults, no
//! `additionalProperties` (metagov/gateway, formerly metagov/metagov-prototype,
//! `metagov/metagov/plugins/example/models.py`, and its later `plugin_manager` version which
//! adds the output schemas). One documented difference: `delay` is a `number`, so fractional
//! minutes work (Metagov: `integer`; every integer is still accepted). What the schemas leave
//! open is checked here and refused with a 400 naming the field, where Metagov would fail later:
//! an empty `options` list, a `delay` that is negative or beyond ten years, `low >= high`, and
//! settings whose `default_low` is not below `default_high`.

use rand::Rng;
use serde_json::{json, Value};

use crate::{
    ActionContext, ActionSpec, ErrorCode, Plugin, PluginError, PluginMeta, ProcessContext,
    ProcessSpec, ProcessStatus,
};

const COMPLETE_TIMER: &str = "complete";

/// The longest `delay` in minutes (ten years): beyond it a deadline is no longer a duration the
/// timers can hold.
const MAX_DELAY_MINUTES: f64 = 5_256_000.0;

pub struct Randomness {
    meta: PluginMeta,
}

impl Default for Randomness {
    fn default() -> Self {
        Self::new()
    }
}

impl Randomness {
    pub fn new() -> Self {
        Self {
            meta: PluginMeta {
                name: "randomness",
                verbose_name: "Randomness",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "Example plugin implementing randomness (Metagov's example plugin).",
                auth_type: "none",
                uses_webhook: false,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "default_low": {"type": "integer"},
                        "default_high": {"type": "integer"}
                    },
                    "required": ["default_low", "default_high"]
                }),
                actions: vec![
                    ActionSpec {
                        name: "random-int",
                        description: "Get a random integer in range",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "low": {"type": "integer"},
                                "high": {"type": "integer"}
                            }
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {"value": {"type": "integer"}}
                        }),
                        public: false,
                    },
                    ActionSpec {
                        name: "set-lucky-number",
                        description: "Set lucky number",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {"lucky_number": {"type": "integer"}},
                            "required": ["lucky_number"]
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {"lucky_number": {"type": "integer"}}
                        }),
                        public: false,
                    },
                ],
                processes: vec![ProcessSpec {
                    name: "delayed-stochastic-vote",
                    description: "Pending for `delay` minutes, then completes with a random winner among `options`.",
                    parameters_schema: json!({
                        "type": "object",
                        "properties": {
                            "options": {"type": "array", "items": {"type": "string"}},
                            "delay": {
                                "type": "number",
                                "description": "number of minutes to delay the stochastic vote"
                            }
                        },
                        "required": ["options", "delay"]
                    }),
                    outcome_schema: json!({
                        "type": "object",
                        "properties": {"winner": {"type": "string"}},
                        "required": ["winner"]
                    }),
                }],
                navigation: vec![],
                widgets: vec![],
                events: vec![],
            },
        }
    }

    fn pick_winner(ctx: &mut ProcessContext<'_>) {
        let options: Vec<String> = ctx
            .state
            .get("options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // A process is only ever started with at least one option (see `start_process`).
        let winner = if options.is_empty() {
            Value::Null
        } else {
            Value::String(options[rand::thread_rng().gen_range(0..options.len())].clone())
        };
        ctx.complete(json!({ "winner": winner }));
    }
}

/// An integer the schema required: the parameter when given, else the setting. Both were
/// validated (integers reach plugins as i64), so a miss is a contract breach, answered as
/// such rather than with a made-up value.
fn integer(params: &Value, key: &str, config: &Value, setting: &str) -> Result<i64, PluginError> {
    match params.get(key) {
        Some(value) => value
            .as_i64()
            .ok_or_else(|| PluginError::invalid(key, format!("{value} is not a 64-bit integer"))),
        None => config.get(setting).and_then(Value::as_i64).ok_or_else(|| {
            PluginError::invalid(
                key,
                format!("no '{key}' given and no '{setting}' setting to fall back on"),
            )
        }),
    }
}

impl Plugin for Randomness {
    /// No network half at all.
    fn remote_on_close(&self) -> bool {
        false
    }

    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn check_settings(&self, settings: &Value) -> Result<(), PluginError> {
        let low = settings.get("default_low").and_then(Value::as_i64);
        let high = settings.get("default_high").and_then(Value::as_i64);
        match (low, high) {
            (Some(low), Some(high)) if low >= high => Err(PluginError::invalid_settings(
                "default_high",
                format!(
                    "default_high ({high}) must be greater than default_low ({low}): \
                     random-int draws from default_low up to, not including, default_high"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        params: &Value,
    ) -> Result<Value, PluginError> {
        match action {
            "random-int" => {
                let low = integer(params, "low", ctx.config, "default_low")?;
                let high = integer(params, "high", ctx.config, "default_high")?;
                if low >= high {
                    return Err(PluginError::invalid(
                        "high",
                        format!("high ({high}) must be greater than low ({low})"),
                    ));
                }
                Ok(json!({ "value": rand::thread_rng().gen_range(low..high) }))
            }
            "set-lucky-number" => {
                let n = params
                    .get("lucky_number")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| {
                        PluginError::invalid("lucky_number", "lucky_number is required")
                    })?;
                *ctx.state = json!({ "lucky_number": n });
                Ok(json!({ "lucky_number": n }))
            }
            other => Err(PluginError {
                code: ErrorCode::UnknownAction,
                message: format!("randomness has no action {other}"),
                field: None,
            }),
        }
    }

    fn start_process(
        &self,
        ctx: &mut ProcessContext<'_>,
        params: &Value,
    ) -> Result<(), PluginError> {
        let options = params
            .get("options")
            .and_then(Value::as_array)
            .filter(|options| !options.is_empty())
            .ok_or_else(|| {
                PluginError::invalid("options", "options must list at least one option")
            })?
            .clone();
        let delay_min = params
            .get("delay")
            .and_then(Value::as_f64)
            .filter(|delay| (0.0..=MAX_DELAY_MINUTES).contains(delay))
            .ok_or_else(|| {
                PluginError::invalid(
                    "delay",
                    format!("delay must be a number of minutes from 0 to {MAX_DELAY_MINUTES}"),
                )
            })?;
        // Within the bound, the product is at most about 3.2e11 ms: exact in both types.
        let due = ctx
            .now_ms
            .saturating_add((delay_min * 60_000.0).round() as u64);
        *ctx.state = json!({ "options": options, "due_ms": due });
        ctx.status = ProcessStatus::Pending;
        ctx.set_timer(COMPLETE_TIMER, due);
        Ok(())
    }

    fn tick(&self, ctx: &mut ProcessContext<'_>, timer: &str) -> Result<(), PluginError> {
        if timer == COMPLETE_TIMER && ctx.status != ProcessStatus::Completed {
            Self::pick_winner(ctx);
        }
        Ok(())
    }

    fn close_process(&self, ctx: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        ctx.cancel_timer(COMPLETE_TIMER);
        Self::pick_winner(ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_int_stays_in_range_and_rejects_an_empty_range() {
        let p = Randomness::new();
        let config = json!({"default_low": 2, "default_high": 4});
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &config, &mut state, 0);
        for _ in 0..100 {
            let v = p.action(&mut ctx, "random-int", &json!({})).unwrap()["value"]
                .as_i64()
                .unwrap();
            assert!((2..4).contains(&v));
        }
        let err = p
            .action(&mut ctx, "random-int", &json!({"low": 5, "high": 5}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("high"));
    }

    #[test]
    fn the_vote_completes_at_its_timer_with_one_of_the_options() {
        let p = Randomness::new();
        let config = json!({});
        let mut state = Value::Null;
        let mut ctx =
            ProcessContext::new("c", "delayed-stochastic-vote", &config, &mut state, 1000);
        p.start_process(&mut ctx, &json!({"options": ["a", "b"], "delay": 0.5}))
            .unwrap();
        assert_eq!(ctx.status, ProcessStatus::Pending);
        assert_eq!(ctx.timers, vec![(COMPLETE_TIMER.to_string(), 31_000)]);
        p.tick(&mut ctx, COMPLETE_TIMER).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        let w = ctx.outcome["winner"].as_str().unwrap().to_string();
        assert!(w == "a" || w == "b");
    }

    #[test]
    fn every_builtin_schema_is_enforceable() {
        crate::builtin::all().unwrap();
    }

    /// Metagov's schemas, as its `randomness` plugin declares them (see the module header).
    #[test]
    fn the_schemas_are_metagovs() {
        let p = Randomness::new();
        let m = p.meta();
        assert_eq!(
            m.config_schema,
            json!({
                "type": "object",
                "properties": {"default_low": {"type": "integer"}, "default_high": {"type": "integer"}},
                "required": ["default_low", "default_high"]
            })
        );
        let random_int = m.action("random-int").unwrap();
        assert!(!random_int.public);
        assert_eq!(
            random_int.parameters_schema,
            json!({"type": "object", "properties": {"low": {"type": "integer"}, "high": {"type": "integer"}}})
        );
        assert_eq!(
            m.action("set-lucky-number").unwrap().parameters_schema,
            json!({
                "type": "object",
                "properties": {"lucky_number": {"type": "integer"}},
                "required": ["lucky_number"]
            })
        );
        let vote = &m
            .process("delayed-stochastic-vote")
            .unwrap()
            .parameters_schema;
        assert_eq!(vote["required"], json!(["options", "delay"]));
        assert_eq!(
            vote["properties"]["options"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert!(vote.get("additionalProperties").is_none());
        assert!(vote["properties"]["delay"].get("default").is_none());
    }

    #[test]
    fn a_vote_needs_a_delay_and_options() {
        let registry = crate::builtin::all().unwrap();
        let schema = registry
            .process_schema("randomness", "delayed-stochastic-vote")
            .unwrap();
        let missing = schema.check(&json!({"options": ["a"]}), "").unwrap_err();
        assert_eq!(missing.path, "delay");
        assert!(schema
            .check(&json!({"options": ["a"], "delay": 1}), "")
            .is_ok());

        let p = Randomness::new();
        let config = json!({});
        let mut state = Value::Null;
        let mut ctx =
            ProcessContext::new("c", "delayed-stochastic-vote", &config, &mut state, 1000);
        let empty = p
            .start_process(&mut ctx, &json!({"options": [], "delay": 1}))
            .unwrap_err();
        assert_eq!(empty.field.as_deref(), Some("options"));
        for delay in [json!(-1), json!(1e300), json!(MAX_DELAY_MINUTES + 1.0)] {
            let err = p
                .start_process(&mut ctx, &json!({"options": ["a"], "delay": delay}))
                .unwrap_err();
            assert_eq!(err.field.as_deref(), Some("delay"), "{delay}");
        }
        assert!(ctx.timers.is_empty());
    }

    #[test]
    fn settings_need_low_below_high() {
        let p = Randomness::new();
        let err = p
            .check_settings(&json!({"default_low": 10, "default_high": 1}))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSettings);
        assert_eq!(err.field.as_deref(), Some("default_high"));
        assert!(p
            .check_settings(&json!({"default_low": 5, "default_high": 5}))
            .is_err());
        assert!(p
            .check_settings(&json!({"default_low": 1, "default_high": 10}))
            .is_ok());
    }

    /// Issue 13: `1e3` is the integer 1000, and a value beyond i64 is a violation naming the
    /// field, never the configured default.
    #[test]
    fn random_int_uses_exponent_integers_and_refuses_out_of_range_ones() {
        let registry = crate::builtin::all().unwrap();
        let schema = registry.action_schema("randomness", "random-int").unwrap();
        let p = Randomness::new();
        let config = json!({"default_low": 0, "default_high": 100});
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &config, &mut state, 0);

        let params: Value = serde_json::from_str(r#"{"low": 0, "high": 1e3}"#).unwrap();
        let params = schema.check(&params, "parameters").unwrap();
        assert_eq!(params["high"], json!(1000));
        let mut above_default = false;
        for _ in 0..200 {
            let v = p.action(&mut ctx, "random-int", &params).unwrap()["value"]
                .as_i64()
                .unwrap();
            assert!((0..1000).contains(&v));
            above_default |= v >= 100;
        }
        assert!(
            above_default,
            "the default high (100) was used instead of 1e3"
        );

        let params: Value =
            serde_json::from_str(r#"{"low": 0, "high": 18446744073709551615}"#).unwrap();
        let err = schema.check(&params, "parameters").unwrap_err();
        assert_eq!(err.path, "parameters.high");
    }
}
