//! The model-to-family table: the coordinator names a task's model (`config.model`) but not
//! its family. A model belongs to the first family one of whose names starts its own, after
//! an organisation prefix (`openai/`) and case are dropped; a model no name fits is `other`.
//! README's "Coordinator" section shows this table.

use shared::event::ModelFamily;

pub const FAMILIES: &[(ModelFamily, &[&str])] = &[
    // In this order: a vision-language model named after its text model (`qwen-vl`) is
    // multimodal, not text.
    (
        ModelFamily::Multimodal,
        &["clip", "blip", "llava", "flava", "idefics", "layoutlm", "owlvit", "paligemma", "qwen-vl", "qwen2-vl"],
    ),
    (
        ModelFamily::Audio,
        &["whisper", "wav2vec", "hubert", "wavlm", "clap", "encodec", "musicgen", "speecht5", "audio"],
    ),
    (
        ModelFamily::Vision,
        &[
            "vit",
            "deit",
            "beit",
            "swin",
            "convnext",
            "resnet",
            "efficientnet",
            "mobilenet",
            "regnet",
            "yolo",
            "detr",
            "dino",
            "sam",
            "segformer",
            "mask2former",
        ],
    ),
    (
        ModelFamily::Text,
        &[
            "bert",
            "roberta",
            "distilbert",
            "albert",
            "deberta",
            "electra",
            "xlm",
            "t5",
            "bart",
            "gpt",
            "llama",
            "mistral",
            "mixtral",
            "falcon",
            "bloom",
            "opt",
            "qwen",
            "phi",
            "gemma",
        ],
    ),
];

pub fn family_of(model: &str) -> ModelFamily {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    FAMILIES
        .iter()
        .find(|(_, names)| names.iter().any(|prefix| name.starts_with(prefix)))
        .map_or(ModelFamily::Other, |(family, _)| *family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_fall_in_their_family_and_the_rest_in_other() {
        for (model, family) in [
            ("bert-base-uncased", ModelFamily::Text),
            ("meta-llama/Llama-2-7b", ModelFamily::Text),
            ("openai/clip-vit-base-patch32", ModelFamily::Multimodal),
            ("google/vit-base-patch16-224", ModelFamily::Vision),
            ("openai/whisper-tiny", ModelFamily::Audio),
            ("llava-1.5-7b", ModelFamily::Multimodal),
            ("my-own-model", ModelFamily::Other),
        ] {
            assert_eq!(family_of(model), family, "{model}");
        }
    }
}
