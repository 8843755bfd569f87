//! The cost of checking one request against a plugin schema compiled at load: the
//! `randomness.random-int` parameters (validated on every `action_random_int` request of the
//! Metagov workload), the randomness settings and the `delayed-stochastic-vote` parameters.
//! Measured against the hand-written validator this replaced: see the commit that added it.

use agora_plugins::builtin;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn schema_checks(c: &mut Criterion) {
    let registry = builtin::all().expect("the built-in plugins register");
    let mut g = c.benchmark_group("schema_check");
    let cases = [
        (
            "random_int_params",
            registry.action_schema("randomness", "random-int"),
            json!({"low": 0, "high": 100}),
        ),
        (
            "randomness_settings",
            registry.config_schema("randomness"),
            json!({"default_low": 0, "default_high": 10}),
        ),
        (
            "stochastic_vote_params",
            registry.process_schema("randomness", "delayed-stochastic-vote"),
            json!({"options": ["yes", "no", "abstain"], "delay": 60}),
        ),
    ];
    for (name, schema, value) in cases {
        let schema = schema.expect("randomness publishes this schema");
        g.bench_function(format!("{name}/jsonschema"), |b| {
            b.iter(|| {
                schema
                    .check(std::hint::black_box(&value), "parameters")
                    .is_ok()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, schema_checks);
criterion_main!(benches);
