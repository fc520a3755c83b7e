//! Predicted against measured, on this machine, with the real test model through the real
//! brain: the memory bandwidth measured as the product measures it, SmolLM2-135M asked for a
//! fixed number of tokens, and the prediction for it within 2x of what it did. The figures are
//! printed (BENCHMARKS.md, "Predicted speed"). Then the measured speed is what the
//! recommendation shows, stored in the data folder's machine.json.

use crate::brain::{ask, brain, collect, installed_copy, smol_catalog};
use localbrain::brain::default_threads;
use localbrain::catalog::Catalog;
use localbrain::chat::Finish;
use localbrain::machine;
use localbrain::recommend::recommend_with;
use localbrain::speed::{SpeedSource, estimates};
use testkit::SMOL;

/// Tokens per timed run: enough that the start-up is a small part, few enough to stay quick.
const TOKENS: u32 = 64;
/// Timed runs; the fastest counts, as the machine's speed when it is least disturbed (the
/// bandwidth figure it is compared with is also its best).
const RUNS: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn the_test_models_predicted_speed_is_within_2x_of_its_measured_speed() {
    let (dir, models) = installed_copy();
    let machine_file = machine::path_in(dir.path());
    let toml = smol_catalog();
    let catalog = Catalog::parse(&toml).unwrap();
    // The product's settings for this machine: its generation threads, its machine file.
    let brain = brain(&models, &toml, |c| {
        c.threads = default_threads();
        c.machine_file = Some(machine_file.clone());
    });
    let cfg = brain.config().clone();
    let hw = tokio::task::spawn_blocking(move || cfg.hardware(false)).await.unwrap();
    let bandwidth = hw.memory_bandwidth_gbps.expect("the bandwidth was measured");
    let inputs = brain.config().speed_inputs();
    assert!(inputs.measured.is_empty());
    let predicted = estimates(&catalog.models, &hw, &inputs)[0].clone().expect("a prediction");
    assert_eq!(predicted.source, SpeedSource::Predicted);

    // A first reply loads the model and warms the caches; then the timed ones.
    collect(brain.chat(1, ask("Say hello.", 8)).await.unwrap()).await;
    let mut speeds = Vec::new();
    for _ in 0..RUNS {
        let (_, stats) =
            collect(brain.chat(1, ask("Write a very long story about a dragon.", TOKENS)).await.unwrap()).await;
        assert!(stats.generated_tokens >= TOKENS / 2, "too short a reply to time: {stats:?}");
        assert!(matches!(stats.finish, Finish::Length | Finish::Stop), "{stats:?}");
        speeds.push(stats.tokens_per_second);
    }
    let measured = speeds.iter().copied().fold(0.0, f64::max);
    let ratio = predicted.tokens_per_second / measured;
    println!(
        "speed: predicted {:.0} tokens/s, measured {measured:.0} tokens/s (best of {speeds:.0?}), ratio {ratio:.2}; \
         bandwidth {bandwidth:.1} GB/s with {} thread(s)",
        predicted.tokens_per_second,
        hw.threads.unwrap_or(0),
    );
    assert!((0.5..=2.0).contains(&ratio), "predicted {predicted:?}, measured {speeds:?}, bandwidth {bandwidth} GB/s");

    // Every reply long enough was recorded: the recommendation now shows the measured speed.
    let inputs = brain.config().speed_inputs();
    let stored = inputs.measured.iter().find(|s| s.model_id == SMOL).expect("the speed was recorded");
    assert_eq!(machine::load(&machine_file).speeds[SMOL].len(), RUNS, "the short warm-up reply is not recorded");
    let r = recommend_with(&catalog.models, &hw, &inputs);
    let shown = r.fits[0].speed.as_ref().unwrap();
    assert_eq!(shown.source, SpeedSource::Measured);
    assert_eq!(shown.tokens_per_second, stored.tokens_per_second);
    assert!(r.reason.starts_with("measured "), "{}", r.reason);
}
