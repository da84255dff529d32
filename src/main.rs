//! The `events` binary: load `.env`, parse, run, turn an error into one line
//! on stderr and an exit status. Everything else lives in the library.

use clap::Parser;

fn main() {
    events::cmd::install_panic_hook();
    let loaded = events::cmd::load_dotenv();
    let cli = events::cli::Cli::parse();
    if let Err(err) = loaded.and_then(|()| events::cmd::run(cli)) {
        let code = events::error::exit_code(&err);
        if code != 0 {
            eprintln!("events: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
        }
        std::process::exit(code);
    }
}
