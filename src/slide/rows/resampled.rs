//! A slide resampled to another size as it is read, band by band, with preprocessing's resampling
//! (Pillow's bilinear, bit for bit): the rows equal those of the whole level resized at once, so a
//! window of the resampled slide is the window a user would cut from a resized copy.

use super::reader::{ReadError, Rows};
use crate::engine::resample::Axis;

pub(crate) struct Resampled {
    inner: Box<dyn Rows + Send>,
    input: (usize, usize),
    output: (usize, usize),
    across: Axis,
    down: Axis,
    /// Horizontally resampled input rows `first..first + rows held`.
    held: Vec<u8>,
    first: usize,
    /// Input rows as read, before the horizontal pass.
    raw: Vec<u8>,
}

impl Resampled {
    pub(crate) fn new(inner: Box<dyn Rows + Send>, output: (usize, usize)) -> Resampled {
        let input = inner.size();
        Resampled {
            across: Axis::new(input.0, output.0),
            down: Axis::new(input.1, output.1),
            inner,
            input,
            output,
            held: Vec::new(),
            first: 0,
            raw: Vec::new(),
        }
    }
}

impl Rows for Resampled {
    fn size(&self) -> (usize, usize) {
        self.output
    }

    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
        let (in_w, _) = self.input;
        let (out_w, out_h) = self.output;
        let stride = out_w * 3;
        out.fill(255);
        let last = (y + rows).min(out_h);
        if y >= last {
            return Ok(());
        }
        let (need_first, need_last) = self.down.inputs(y..last);
        // Forget rows above what these outputs read (calls come with y never decreasing).
        let held_rows = self.held.len() / stride;
        let drop = need_first.saturating_sub(self.first).min(held_rows);
        self.held.drain(..drop * stride);
        self.first += drop;
        if self.held.is_empty() {
            self.first = need_first;
        }
        let have = self.first + self.held.len() / stride;
        if need_last > have {
            let count = need_last - have;
            self.raw.resize(in_w * count * 3, 0);
            self.inner.read(have, count, &mut self.raw)?;
            let start = self.held.len();
            self.held.resize(start + count * stride, 0);
            for r in 0..count {
                self.across.horizontal(
                    &self.raw[r * in_w * 3..(r + 1) * in_w * 3],
                    3,
                    &mut self.held[start + r * stride..start + (r + 1) * stride],
                );
            }
        }
        for yy in y..last {
            let o = (yy - y) * stride;
            self.down
                .vertical(yy, &self.held, self.first, stride, &mut out[o..o + stride]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Memory(usize, usize, Vec<u8>);

    impl Rows for Memory {
        fn size(&self) -> (usize, usize) {
            (self.0, self.1)
        }
        fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
            super::super::reader::copy_rows(&self.2, 0, self.0, y, rows, out);
            Ok(())
        }
    }

    #[test]
    fn bands_equal_the_whole_image_resized() {
        let (w, h) = (173, 211);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        for (ow, oh) in [(90, 97), (173, 100), (60, 211), (41, 23)] {
            let whole = crate::engine::resample::resize_bilinear(&pixels, w, h, 3, ow, oh);
            for band in [1, 7, 96] {
                let mut rows = Resampled::new(Box::new(Memory(w, h, pixels.clone())), (ow, oh));
                let mut got = Vec::new();
                let mut buf = vec![0u8; ow * band * 3];
                for y in (0..oh).step_by(band) {
                    rows.read(y, band, &mut buf).unwrap();
                    let inside = band.min(oh - y);
                    got.extend_from_slice(&buf[..inside * ow * 3]);
                    assert!(buf[inside * ow * 3..].iter().all(|&b| b == 255));
                }
                assert_eq!(got, whole, "{ow}x{oh} in bands of {band}");
            }
        }
    }
}
