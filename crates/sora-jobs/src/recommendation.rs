//! What a recommender answers (`sora predict --user`, `POST /v1/recommend`).

use serde::Serialize;

use crate::model::csv_field;

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommended {
    /// The item id, as in the data.
    pub item: String,
    /// The model's score: probability of interaction, or predicted rating (for a popularity
    /// list: the share of users).
    pub score: f32,
    /// The items the user rated that most support this one, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub because: Vec<String>,
}

/// One user's top-N list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserItems {
    /// The user id.
    pub user: String,
    /// Best first.
    pub items: Vec<Recommended>,
    /// `true` when the user is unknown and the list is the most popular items.
    pub popularity_fallback: bool,
}

/// Lists as CSV: `user,rank,item,score,popularity_fallback,because` (score with 6 decimals,
/// supporting items joined by `;`).
pub fn recommendations_csv(lists: &[UserItems]) -> String {
    let mut text = String::from("user,rank,item,score,popularity_fallback,because\n");
    for list in lists {
        for (rank, r) in list.items.iter().enumerate() {
            text.push_str(&format!(
                "{},{},{},{:.6},{},{}\n",
                csv_field(&list.user),
                rank + 1,
                csv_field(&r.item),
                r.score,
                list.popularity_fallback,
                csv_field(&r.because.join(";"))
            ));
        }
    }
    text
}
