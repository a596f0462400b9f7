//! Lets the binary find the prebuilt libduckdb it links at run time, wherever
//! `DUCKDB_LIB_DIR` pointed at build time, without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
