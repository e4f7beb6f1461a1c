//! A growable bit vector: presence flags of the columns and the result of evaluating a filter.

/// Bits `0..len`, packed 64 to a word; bits past `len` in the last word are always 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// `len` bits, all 0.
    pub(crate) fn zeros(len: usize) -> Bits {
        Bits { words: vec![0; len.div_ceil(64)], len }
    }

    /// `len` bits, all 1.
    pub(crate) fn ones(len: usize) -> Bits {
        let mut bits = Bits { words: vec![u64::MAX; len.div_ceil(64)], len };
        bits.clear_tail();
        bits
    }

    /// One bit per value, set where `bit` holds, 64 values per word (the loop the column scans use).
    /// The predicate runs over 64 values into bytes, which the compiler vectorises; each 8 bytes of
    /// 0/1 are then packed into 8 bits by one multiplication (byte `i` lands on bit `56 + i`).
    #[inline]
    pub(crate) fn from_values<T>(values: &[T], bit: impl Fn(&T) -> bool) -> Bits {
        let words = values
            .chunks(64)
            .map(|chunk| {
                let mut flags = [0u8; 64];
                for (flag, v) in flags.iter_mut().zip(chunk) {
                    *flag = u8::from(bit(v));
                }
                flags.as_chunks::<8>().0.iter().enumerate().fold(0u64, |word, (i, bytes)| {
                    word | (u64::from_le_bytes(*bytes).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i)
                })
            })
            .collect();
        Bits { words, len: values.len() }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 == 1
    }

    pub(crate) fn set(&mut self, i: usize, value: bool) {
        assert!(i < self.len, "bit {i} of {}", self.len);
        let mask = 1u64 << (i % 64);
        if value {
            self.words[i / 64] |= mask;
        } else {
            self.words[i / 64] &= !mask;
        }
    }

    pub(crate) fn push(&mut self, value: bool) {
        if self.len.is_multiple_of(64) {
            crate::index::grow(&mut self.words, 1, 16);
            self.words.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, value);
    }

    /// Moves the last bit to `i` and drops the last position (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, i: usize) {
        let last = self.len - 1;
        let value = self.get(last);
        self.set(i, value);
        self.set(last, false);
        self.len = last;
        if self.len.is_multiple_of(64) {
            self.words.pop();
        }
    }

    pub(crate) fn and_with(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    pub(crate) fn or_with(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    pub(crate) fn negate(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.clear_tail();
    }

    pub(crate) fn is_all_zero(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    pub(crate) fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Indices of the 1 bits, ascending.
    pub(crate) fn ones_iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    w * 64 + bit
                })
            })
        })
    }

    pub(crate) fn reserve_exact(&mut self, additional_bits: usize) {
        let needed = (self.len + additional_bits).div_ceil(64);
        self.words.reserve_exact(needed.saturating_sub(self.words.len()));
    }

    pub(crate) fn shrink_to(&mut self, bits: usize) {
        self.words.shrink_to(bits.div_ceil(64));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    fn clear_tail(&mut self) {
        if !self.len.is_multiple_of(64)
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << (self.len % 64)) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_set_swap_remove_and_iterate() {
        let mut bits = Bits::default();
        let mut model = Vec::new();
        for i in 0..200 {
            let v = i % 3 == 0 || i % 7 == 0;
            bits.push(v);
            model.push(v);
        }
        for i in [0, 5, 63, 64, 150] {
            bits.swap_remove(i);
            model.swap_remove(i);
            assert_eq!(bits.len(), model.len());
        }
        while model.len() > 60 {
            bits.swap_remove(model.len() - 1);
            model.pop();
        }
        let ones: Vec<usize> = model.iter().enumerate().filter(|(_, v)| **v).map(|(i, _)| i).collect();
        assert_eq!(bits.ones_iter().collect::<Vec<_>>(), ones);
        assert_eq!(bits.count_ones(), ones.len());
        assert_eq!(bits.words().len(), 1);
        let mut negated = bits.clone();
        negated.negate();
        assert_eq!(negated.count_ones(), model.len() - ones.len());
        assert_eq!(Bits::ones(130).count_ones(), 130);
        assert_eq!(Bits::from_values(&(0..130).collect::<Vec<_>>(), |i| i % 2 == 0).count_ones(), 65);
    }

    #[test]
    fn from_values_sets_exactly_the_bits_whose_value_passes() {
        for len in [0, 1, 7, 8, 63, 64, 65, 200, 1000] {
            let values: Vec<u64> = (0..len as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60).collect();
            let bits = Bits::from_values(&values, |&v| v % 3 == 1);
            assert_eq!(bits.len(), len);
            for (i, &v) in values.iter().enumerate() {
                assert_eq!(bits.get(i), v % 3 == 1, "bit {i} of {len}");
            }
            assert_eq!(bits.count_ones(), values.iter().filter(|&&v| v % 3 == 1).count());
        }
        assert!(Bits::zeros(100).is_all_zero());
    }
}
