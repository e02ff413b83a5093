//! The progress bar a run draws on stderr while its arms race.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress bar on stderr, only when stderr is a terminal and the run is long
/// enough to want one: `      makedirs [=======>          ] 3s`, redrawn in place at
/// most ten times a second, and erased at the end so the report stands alone.
pub struct Progress {
    bar: Option<std::cell::RefCell<Bar>>,
    seconds: f64,
}

struct Bar {
    label: String,
    drawn: Option<Instant>,
}

/// Width of the bar between its brackets.
const BAR_WIDTH: usize = 40;

/// One line of the bar, for `frac` of the run done after `elapsed` whole seconds.
fn bar_line(label: &str, frac: f64, elapsed: u64) -> String {
    let filled = ((frac.clamp(0.0, 1.0) * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let mut bar = "=".repeat(filled);
    if filled < BAR_WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat(BAR_WIDTH - filled - 1));
    }
    format!("\r{label:>16} [{bar}] {elapsed}s")
}

impl Progress {
    pub fn new(label: &str, seconds: f64, enabled: bool) -> Progress {
        let bar = (enabled && seconds > 1.0 && std::io::stderr().is_terminal()).then(|| {
            std::cell::RefCell::new(Bar {
                label: label.to_string(),
                drawn: None,
            })
        });
        Progress { bar, seconds }
    }

    pub fn tick(&self, begin: Instant) {
        let Some(bar) = &self.bar else { return };
        let mut bar = bar.borrow_mut();
        if bar
            .drawn
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        bar.drawn = Some(Instant::now());
        let elapsed = begin.elapsed();
        let line = bar_line(
            &bar.label,
            elapsed.as_secs_f64() / self.seconds,
            elapsed.as_secs(),
        );
        // A terminal that cannot take the bar costs the bar, not the run.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar
            && bar.borrow().drawn.is_some()
        {
            // Back to the line's start and erase it.
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_in_proportion_and_never_overflows() {
        let line = |frac| bar_line("makedirs", frac, 3);
        assert_eq!(
            line(0.0),
            format!("\r        makedirs [>{}] 3s", " ".repeat(39))
        );
        assert_eq!(
            line(0.5),
            format!(
                "\r        makedirs [{}>{}] 3s",
                "=".repeat(20),
                " ".repeat(19)
            )
        );
        assert_eq!(
            line(1.0),
            format!("\r        makedirs [{}] 3s", "=".repeat(40))
        );
        assert_eq!(line(7.0), line(1.0));
        assert_eq!(line(-1.0), line(0.0));
        assert_eq!(line(f64::NAN), line(0.0));
    }
}
