//! The README's commands are the product's documentation: every `events …`
//! command line in it must parse with the real command line, and the two
//! set-up commands must be exactly the ones that work on a fresh machine.

use clap::Parser;
use events::cli::Cli;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// Shell lines inside ```sh and ```console blocks, continuation lines joined.
fn shell_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = matches!(line.trim(), "```sh" | "```console");
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.strip_prefix("$ ").unwrap_or(line);
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

/// Every `events` invocation in a shell line (after pipes and `&&`).
fn invocations(line: &str) -> Vec<Vec<String>> {
    let line = line.split(" #").next().unwrap_or(line);
    line.split(['|', '&', ';'])
        .filter_map(|part| {
            let words = shlex::split(part.trim())?;
            let start = words.iter().position(|w| w == "events")?;
            // Only commands that run the binary, not `cargo run … -- events`.
            (start == 0 || words[start - 1].contains('=')).then(|| words[start..].to_vec())
        })
        .collect()
}

#[test]
fn every_events_command_in_the_readme_parses() {
    let text = readme();
    let mut checked = 0;
    for line in shell_lines(&text) {
        for mut words in invocations(&line) {
            // Output redirections are the shell's, not ours.
            words.retain(|w| !w.starts_with('>'));
            if let Some(i) = words.iter().position(|w| w == ">" || w.starts_with("~/")) {
                words.truncate(i);
            }
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("README command does not parse: {line}\n{e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
}

#[test]
fn the_readme_has_the_two_set_up_commands() {
    let text = readme();
    assert!(text.contains(
        "cargo run -q -- emit user.signup --email ada@example.com && cargo run -q -- work --burst"
    ));
    assert!(text.contains("\nbash .ci/run\n"));
}
