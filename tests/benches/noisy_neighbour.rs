//! The noisy-neighbour bench (issue 19): directory A floods changes to a slow target
//! while directory B sends one change a second, through the FIFO change queue on
//! moto's SQS and the real dispatcher handler run by an emulated event source mapping
//! (`integration_tests::noisy_neighbour`). Prints Markdown rows for BENCHMARKS.md:
//!
//! 1. **fairness**: B's delivery latency (p50, p99, max) while A's whole flood drains,
//!    at the stack's defaults (10 lanes per directory, 20 dispatchers, batches of 10);
//! 2. **throughput against concurrency**: A alone, lanes = 64, batches of 1 (each
//!    dispatcher holds one lane), at each concurrency of `--sweep`.
//!
//! Nothing is asserted on time; every change is checked delivered, and deliveries
//! received twice are counted (SQS is at-least-once; a receiver deduplicates on the
//! stable `webhook-id`).
//!
//! ```text
//! PEER_PYTHON=.venv/bin/python cargo bench -p integration-tests --bench noisy_neighbour -- \
//!     [--flood 20000] [--target-ms 200] [--workers 20] [--lanes 10] [--batch 10] \
//!     [--sweep 1,2,4,8,16,32,64] [--sweep-seconds 10] [--skip-fairness] [--skip-sweep]
//! ```

use std::time::Duration;

use integration_tests::noisy_neighbour::{run, Outcome, Scenario};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn check(o: &Outcome, flood: usize) {
    assert_eq!(o.flood_received, flood, "every flood change delivered");
    assert_eq!(o.refused, 0, "every signature verified");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flood: usize = arg(&args, "--flood", 20_000);
    let target = Duration::from_millis(arg(&args, "--target-ms", 200));
    let workers: usize = arg(&args, "--workers", 20);
    let lanes: u16 = arg(&args, "--lanes", 10);
    let batch: i32 = arg(&args, "--batch", 10);
    let sweep_seconds: u64 = arg(&args, "--sweep-seconds", 10);
    let sweep: Vec<usize> = arg(&args, "--sweep", "1,2,4,8,16,32,64".to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let sdk = integration_tests::moto_sdk().await;

    if !args.iter().any(|a| a == "--skip-fairness") {
        let o = run(
            &sdk,
            &Scenario {
                flood,
                target_latency: target,
                workers,
                batch_size: batch,
                lanes,
                quiet_every: Duration::from_secs(1),
                quiet_max: usize::MAX,
                patience: Duration::from_secs(3600),
            },
        )
        .await;
        check(&o, flood);
        println!("| A's flood | target | lanes | dispatchers | batch | A drained in | A's rate | B's changes | B p50 | B p99 | B max | failed msgs | received twice |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {flood} | {} ms | {lanes} | {workers} | {batch} | {:.1} s | {:.1}/s | {} | {} ms | {} ms | {} ms | {} | {} |",
            target.as_millis(),
            o.flood_seconds,
            o.flood_rate(),
            o.quiet_latencies.len(),
            ms(o.quiet_quantile(0.5)),
            ms(o.quiet_quantile(0.99)),
            ms(o.quiet_quantile(1.0)),
            o.failed_messages,
            o.duplicates,
        );
    }

    if !args.iter().any(|a| a == "--skip-sweep") {
        println!();
        println!("| dispatchers | lanes | batch | changes | drained in | rate | rate per dispatcher | ideal (dispatchers / target latency) | received twice |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for &c in &sweep {
            // Enough changes for about `sweep_seconds` at the ideal rate.
            let ideal = c as f64 / target.as_secs_f64();
            let n = ((ideal * sweep_seconds as f64) as usize).max(20);
            let o = run(
                &sdk,
                &Scenario {
                    flood: n,
                    target_latency: target,
                    workers: c,
                    batch_size: 1,
                    lanes: 64,
                    quiet_every: Duration::from_secs(3600),
                    quiet_max: 0,
                    patience: Duration::from_secs(1800),
                },
            )
            .await;
            check(&o, n);
            println!(
                "| {c} | 64 | 1 | {n} | {:.1} s | {:.1}/s | {:.2}/s | {:.1}/s | {} |",
                o.flood_seconds,
                o.flood_rate(),
                o.flood_rate() / c as f64,
                ideal,
                o.duplicates,
            );
        }
    }
}
