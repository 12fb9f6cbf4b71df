#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scancer::fuzzing::dicom(data));
