//! Made-up names of people and companies for the generated data.

use rand::prelude::*;

pub(super) fn person_name(rng: &mut impl Rng) -> String {
    const FIRST: &[&str] = &[
        "Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
        "Luis", "Mara", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera",
        "Wei", "Yusuf", "Zoe",
    ];
    const LAST: &[&str] = &[
        "Almeida", "Becker", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
        "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Patel", "Rossi", "Schmidt",
        "Tanaka", "Usman", "Varga", "Walsh", "Yilmaz", "Zhang",
    ];
    format!(
        "{} {}",
        FIRST.choose(rng).unwrap(),
        LAST.choose(rng).unwrap()
    )
}

pub(super) fn company_name(rng: &mut impl Rng) -> String {
    const A: &[&str] = &[
        "Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
        "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quartz", "River", "Summit", "Tidal",
        "Umber", "Vertex", "Willow", "Zephyr",
    ];
    const B: &[&str] = &[
        "Labs",
        "Systems",
        "Foods",
        "Logistics",
        "Health",
        "Media",
        "Works",
        "Analytics",
        "Retail",
        "Energy",
        "Finance",
        "Studio",
        "Robotics",
        "Travel",
        "Legal",
    ];
    format!("{} {}", A.choose(rng).unwrap(), B.choose(rng).unwrap())
}
