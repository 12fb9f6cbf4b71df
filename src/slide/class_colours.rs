//! One colour per class, the same in every export (QuPath's GeoJSON classification, ASAP's
//! annotation groups): a two-class model's negative class green and positive class red; a model
//! of more classes Tableau 10's colours in class order (repeating after ten). README lists them.

/// A two-class model's classes: negative, positive.
const TWO: [[u8; 3]; 2] = [[20, 180, 20], [200, 0, 0]];

/// Tableau 10, in order: blue, orange, red, teal, green, yellow, purple, pink, brown, grey.
const MANY: [[u8; 3]; 10] = [
    [78, 121, 167],
    [242, 142, 43],
    [225, 87, 89],
    [118, 183, 178],
    [89, 161, 79],
    [237, 201, 72],
    [176, 122, 161],
    [255, 157, 167],
    [156, 117, 95],
    [186, 176, 172],
];

/// The colour of class `class` of a model with `classes` classes.
pub(crate) fn colour(classes: usize, class: usize) -> [u8; 3] {
    if classes <= 2 {
        TWO[class.min(1)]
    } else {
        MANY[class % MANY.len()]
    }
}

/// `#RRGGBB`, as ASAP writes colours.
pub(crate) fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_a_model_has_its_own_colour() {
        assert_eq!(colour(2, 0), [20, 180, 20]);
        assert_eq!(colour(2, 1), [200, 0, 0]);
        for classes in [3, 4, 10] {
            let colours: std::collections::HashSet<[u8; 3]> =
                (0..classes).map(|c| colour(classes, c)).collect();
            assert_eq!(colours.len(), classes);
        }
        assert_eq!(hex(colour(4, 0)), "#4E79A7");
    }
}
