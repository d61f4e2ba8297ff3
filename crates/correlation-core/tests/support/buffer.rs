//! An in-memory writer for the log backends under test, read back by the test.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer shared between a backend and the test: clones write to the same bytes.
#[derive(Clone, Default)]
pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    /// What was written since the last call, as text; the buffer is left empty.
    pub(crate) fn take_text(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}
