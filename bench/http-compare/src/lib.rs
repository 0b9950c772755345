//! Nothing here: the benchmark is `benches/http_read.rs`
//! (`cargo bench --manifest-path bench/http-compare/Cargo.toml`).
