//! Serve domain 1 on port "demo" with 64 KiB rings; say hello, print the
//! answer. Run in domain 0 (unix backend: `VCHAN_DOMID=0`).
use std::io::{BufRead, BufReader};
use std::time::Duration;

use vchan::{DomId, Endpoint, Port, State};

fn main() {
    if let Err(e) = run() {
        eprintln!("server: {e}"); // Display: a sentence, not a Debug dump
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port = Port::new("demo")?;
    let mut server = Endpoint::listen(DomId::new(1)?, &port, 65536, 65536)?;
    // listen returns at once; wait up to 30 s for the client.
    if server.accept(Some(Duration::from_secs(30)))? != State::Connected {
        return Err("the client left before saying anything".into());
    }
    server.write_all(b"hello\n")?;
    let mut answer = String::new();
    BufReader::new(&mut server).read_line(&mut answer)?;
    println!("server got: {}", answer.trim_end());
    server.close()?;
    Ok(())
}
