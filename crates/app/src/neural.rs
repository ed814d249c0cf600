//! The neural family's trainer process. `churnguard-neural` (the only
//! executable that links libtorch) is looked for in `CHURNGUARD_NEURAL`, then
//! beside the running executable; the job goes down its standard input and
//! the epochs and weights come back on its standard output (the format is
//! `churnguard_core::models::neural::job`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use churnguard_core::models::neural::job::{write_job, TrainerMessage};
use churnguard_core::models::neural::{Epoch, NeuralModel, NeuralParams};
use churnguard_core::models::{Family, ModelError};
use churnguard_train::NeuralTrainer;
use ndarray::Array2;

/// The name of the trainer executable.
pub const TRAINER: &str = "churnguard-neural";

/// A `churnguard-neural` executable.
#[derive(Debug, Clone)]
pub struct NeuralProcess {
    exe: PathBuf,
}

impl NeuralProcess {
    /// The trainer named by `CHURNGUARD_NEURAL`, else the one beside the
    /// running executable; `None` when there is none (a build without
    /// libtorch), which skips the neural family with the reason.
    pub fn find() -> Option<NeuralProcess> {
        let candidate = match std::env::var_os("CHURNGUARD_NEURAL") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .ok()?
                .parent()?
                .join(format!("{TRAINER}{}", std::env::consts::EXE_SUFFIX)),
        };
        candidate
            .is_file()
            .then_some(NeuralProcess { exe: candidate })
    }

    /// A trainer at a known path.
    pub fn at(exe: &Path) -> NeuralProcess {
        NeuralProcess {
            exe: exe.to_path_buf(),
        }
    }

    /// Where the trainer is.
    pub fn path(&self) -> &Path {
        &self.exe
    }
}

fn failed(message: String) -> ModelError {
    ModelError::Fit {
        family: Family::Neural,
        message,
    }
}

impl NeuralTrainer for NeuralProcess {
    fn fit(
        &self,
        x: &Array2<f64>,
        y: &[u8],
        params: &NeuralParams,
        seed: u64,
        on_epoch: &mut dyn FnMut(Epoch),
    ) -> Result<NeuralModel, ModelError> {
        let mut child = Command::new(&self.exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("starting {}: {e}", self.exe.display())))?;
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(failed("the trainer's pipes were not opened".into()));
        };
        let mut outcome: Option<Result<NeuralModel, ModelError>> = None;
        let mut stderr_text = String::new();
        std::thread::scope(|scope| {
            // Writing and reading at once: a job larger than the pipe's
            // buffer would otherwise block both processes.
            scope.spawn(move || {
                // A trainer that dies early closes the pipe; its exit status
                // and stderr say why, so the write error itself is dropped.
                let _ = write_job(&mut stdin, x, y, params, seed);
            });
            let errors = scope.spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<TrainerMessage>(&line) {
                    Ok(TrainerMessage::Epoch(e)) => on_epoch(e),
                    Ok(TrainerMessage::Model(m)) => outcome = Some(Ok(m)),
                    Ok(TrainerMessage::Error { bad_param, message }) => {
                        outcome = Some(Err(TrainerMessage::into_error(bad_param, message)))
                    }
                    Err(e) => {
                        outcome = Some(Err(failed(format!(
                            "{} answered with a line this build cannot read ({e}); rebuild both executables together",
                            self.exe.display()
                        ))))
                    }
                }
            }
            stderr_text = errors.join().unwrap_or_default();
        });
        let status = child
            .wait()
            .map_err(|e| failed(format!("waiting for {}: {e}", self.exe.display())))?;
        match outcome {
            Some(result) => result,
            None => {
                let tail: String = stderr_text
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ");
                Err(failed(format!(
                    "{} stopped without an answer ({status}){}",
                    self.exe.display(),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {tail}")
                    }
                )))
            }
        }
    }
}
