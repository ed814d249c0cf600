//! `churnguard-neural`: reads one training job on standard input, fits the
//! MLP with libtorch, and answers on standard output, one JSON message per
//! line (see `churnguard_core::models::neural::job`). Run by `churnguard
//! train`, which looks for it beside its own executable; not meant to be
//! run by hand.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use churnguard_core::models::neural::job::{read_job, TrainerMessage};

fn send(out: &mut dyn Write, message: &TrainerMessage) -> bool {
    serde_json::to_string(message)
        .ok()
        .and_then(|line| writeln!(out, "{line}").and_then(|()| out.flush()).ok())
        .is_some()
}

fn main() -> ExitCode {
    if std::env::args().nth(1).is_some_and(|a| a == "--version") {
        println!("churnguard-neural {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = read_job(&mut input as &mut dyn BufRead).and_then(|(header, x, y)| {
        header.params.check()?;
        churnguard_neural::trainer::fit(&x, &y, &header.params, header.seed, &mut |epoch| {
            send(&mut out, &TrainerMessage::Epoch(epoch));
        })
    });
    let message = match &result {
        Ok(model) => TrainerMessage::Model(model.clone()),
        Err(e) => TrainerMessage::from_error(e),
    };
    if send(&mut out, &message) && result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
