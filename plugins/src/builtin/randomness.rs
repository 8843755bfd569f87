//! `randomness`: Metagov's example plugin, behaving as Metagov's does.
//!
//! Actions `random-int` (public) and `set-lucky-number`; the process `delayed-stochastic-vote`,
//! which stays pending for `delay` minutes and then completes by itself with a random winner
//! (or earlier, when the driver closes it). Agora accepts fractional minutes for `delay`.

use rand::Rng;
use serde_json::{json, Value};

use crate::{
    ActionContext, ActionSpec, ErrorCode, Plugin, PluginError, PluginMeta, ProcessContext,
    ProcessSpec, ProcessStatus,
};

const COMPLETE_TIMER: &str = "complete";

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
                description: "Random numbers and a vote decided by chance (Metagov's example plugin).",
                auth_type: "none",
                uses_webhook: false,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "default_low": {"type": "integer", "default": 0},
                        "default_high": {"type": "integer", "default": 100}
                    },
                    "additionalProperties": false
                }),
                actions: vec![
                    ActionSpec {
                        name: "random-int",
                        description: "A random integer n with low <= n < high (defaults from the config).",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "low": {"type": "integer"},
                                "high": {"type": "integer"}
                            }
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {"value": {"type": "integer"}},
                            "required": ["value"]
                        }),
                        public: true,
                    },
                    ActionSpec {
                        name: "set-lucky-number",
                        description: "Stores the community's lucky number.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {"lucky_number": {"type": "integer"}},
                            "required": ["lucky_number"]
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {"lucky_number": {"type": "integer"}},
                            "required": ["lucky_number"]
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
                            "options": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "delay": {"type": "number", "minimum": 0, "maximum": 5256000, "default": 1}
                        },
                        "required": ["options"]
                    }),
                    outcome_schema: json!({
                        "type": "object",
                        "properties": {"winner": {"type": "string"}}
                    }),
                }],
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
        let winner = if options.is_empty() {
            Value::Null
        } else {
            Value::String(options[rand::thread_rng().gen_range(0..options.len())].clone())
        };
        ctx.complete(json!({ "winner": winner }));
    }
}

fn int_param(params: &Value, config: &Value, key: &str, config_key: &str, fallback: i64) -> i64 {
    params
        .get(key)
        .and_then(Value::as_i64)
        .or_else(|| config.get(config_key).and_then(Value::as_i64))
        .unwrap_or(fallback)
}

impl Plugin for Randomness {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        params: &Value,
    ) -> Result<Value, PluginError> {
        match action {
            "random-int" => {
                let low = int_param(params, ctx.config, "low", "default_low", 0);
                let high = int_param(params, ctx.config, "high", "default_high", 100);
                if low >= high {
                    return Err(PluginError::invalid(
                        "high",
                        format!("high ({high}) must be greater than low ({low})"),
                    ));
                }
                Ok(json!({ "value": rand::thread_rng().gen_range(low..high) }))
            }
            "set-lucky-number" => {
                let n = params.get("lucky_number").cloned().unwrap_or(Value::Null);
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
        let options = params.get("options").cloned().unwrap_or(json!([]));
        let delay_min = params.get("delay").and_then(Value::as_f64).unwrap_or(1.0);
        let due = ctx.now_ms + (delay_min * 60_000.0).round() as u64;
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
}
