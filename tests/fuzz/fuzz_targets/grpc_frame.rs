//! Reading one gRPC message from DATA chunks cut anywhere: never panics, never holds more
//! than the limit, and a message it accepts is the bytes it was given.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use otlp_gateway::grpc::UnaryReader;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let limit = 64 + usize::from(cut) * 4;
    let mut reader = UnaryReader::new(limit);
    let step = usize::from(cut % 17) + 1;
    let mut ok = true;
    for chunk in rest.chunks(step) {
        if reader.push(Bytes::copy_from_slice(chunk)).is_err() {
            ok = false;
            break;
        }
    }
    if ok && let Ok(message) = reader.finish() {
        assert!(message.len() <= limit + 5, "held past the limit");
        assert_eq!(&message[..], &rest[..message.len()], "the message is what was sent");
    }
});
