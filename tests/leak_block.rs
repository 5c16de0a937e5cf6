//! Leak matrix, route `block`: every fault of issue 3 while the protected device sends every
//! kind of traffic; pass = zero packets of the device on the WAN outside the tunnel.
//! Needs root; run through scripts/test.sh (lab tests are limited to MOAT_LAB_PARALLEL=2 labs).

mod lab;

lab::matrix::leak_cells!(block);
