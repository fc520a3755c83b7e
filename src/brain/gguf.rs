//! Reads a GGUF file's header: the facts a person sees (architecture, parameters, context,
//! quantization), the chat template, and whether the file is whole.
//!
//! llama.cpp answers a bad file with a bare null (the reason only in its log), so every file is
//! read here first. The reader never trusts a length it reads: each one is checked against what
//! is left of the file before anything is allocated, so a hostile or truncated header is an
//! error, never a huge allocation. Only the header and tensor table are read (a few MB at most,
//! mostly the vocabulary); the weights are not touched.

use crate::chat::ModelFacts;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Longest key or string value accepted (chat templates are a few KB; 16 MiB is generous).
const MAX_STRING: u64 = 16 * 1024 * 1024;
/// Deepest nesting of arrays accepted.
const MAX_DEPTH: u32 = 4;
/// Most dimensions a tensor has in ggml.
const MAX_DIMS: u32 = 4;

/// The architectures this build of llama.cpp (the one `llama-cpp-sys-2` 0.1.161 bundles) can
/// load, from its `src/llama-arch.cpp`. A file naming another one would fail to load.
#[rustfmt::skip]
const ARCHITECTURES: &[&str] = &[
    "llama", "llama4", "deci", "falcon", "grok", "gpt2", "gptj", "gptneox", "mpt", "baichuan", "starcoder", "refact",
    "bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2", "jina-bert-v3", "eurobert",
    "bloom", "stablelm", "qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3next", "qwen3vl",
    "qwen3vlmoe", "qwen35", "qwen35moe", "clef", "qwen4exp", "phi2", "phi3", "phimoe", "plamo", "plamo2", "plamo3",
    "codeshell", "orion", "internlm2", "minicpm", "minicpm3", "gemma", "gemma2", "gemma3", "gemma3n", "gemma4",
    "gemma4-assistant", "gemma-embedding", "starcoder2", "mamba", "mamba2", "maple", "jamba", "falcon-h1", "xverse",
    "command-r", "cohere2", "cohere2moe", "dbrx", "olmo", "olmo2", "olmoe", "muse-glimmer", "openelm", "arctic",
    "deepseek", "deepseek2", "deepseek2-ocr", "deepseek32", "deepseek4", "chatglm", "glm4", "glm4moe", "glm-dsa",
    "bitnet", "t5", "t5encoder", "jais", "jais2", "nemotron", "nemotron_h", "nemotron_h_moe", "exaone", "exaone4",
    "exaone-moe", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7", "granite", "granitemoe", "granitehybrid", "graniteswitch",
    "granite_swa", "chameleon", "plm", "bailingmoe", "bailingmoe2", "bailingmoe3", "dots1", "dots3note", "arcee",
    "afmoe", "laguna", "ernie4_5", "ernie4_5-moe", "hunyuan-moe", "hunyuan-dense", "hunyuan_vl", "hy_v3", "hy_v4",
    "smollm3", "gpt-oss", "lfm2", "lfm2moe", "dream", "smallthinker", "llada", "llada-moe", "seed_oss", "grovemoe",
    "apertus", "minimax-01", "hrm_text", "minimax-m2", "minimax-m3", "cogvlm", "rnd1", "pangu-embedded", "mistral3",
    "eagle3", "dflash", "mistral4", "paddleocr", "mimo2", "step35", "spark2_5", "llama-embed", "maincoder",
    "kimi-linear", "kimi-k3", "glm5-next", "talkie", "mellum", "nanbeige",
];

/// Why a file is not a model this runtime can run.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the file")]
    Io(#[source] io::Error),
    #[error("not a GGUF model file")]
    NotGguf,
    #[error("GGUF version {0} is not one this runtime reads (2 or 3)")]
    UnsupportedVersion(u32),
    #[error("the file is cut short: it needs {needed} bytes and has {actual}")]
    Truncated { needed: u64, actual: u64 },
    #[error("the GGUF header is damaged ({0})")]
    Malformed(&'static str),
    #[error("the file does not say which model architecture it is")]
    NoArchitecture,
    #[error("its architecture {0:?} is not one this version of llama.cpp can run")]
    UnsupportedArchitecture(String),
}

/// What the header says.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u32,
    pub facts: ModelFacts,
    /// `tokenizer.chat_template`, the model's own Jinja template.
    pub chat_template: Option<String>,
    /// The length the file must have to hold every tensor.
    pub needed_len: u64,
    /// What the GPU offload plan needs ([`super::offload`]).
    pub layout: Layout,
    /// `{arch}.pooling_type`, llama.cpp's code for how an embedding model pools its tokens
    /// (1 mean, 2 CLS, 3 last, 4 rank); `None` when the file does not say (chat models).
    pub pooling: Option<u32>,
    /// `split.count`: the files of a split model (`gguf-split`), 1 for one file. [`read`] adds the
    /// other parts' tensors to the first part's; [`read_prefix`] sees the first part's only.
    pub parts: u32,
}

/// Architectures that only encode (BERT and its kin): they embed and cannot generate.
const ENCODERS: &[&str] = &[
    "bert",
    "eurobert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "modern-bert",
    "neo-bert",
    "t5encoder",
];

impl Header {
    /// Whether the model can write a reply (a decoder), rather than only embed.
    pub fn writes(&self) -> bool {
        !ENCODERS.contains(&self.facts.architecture.as_str())
    }
}

/// How the weights are laid out: the repeating layers, and their KV cache per token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Layout {
    /// `{arch}.block_count`; 0 when the file does not say.
    pub layers: u32,
    /// The bytes of the layers' tensors (`blk.N.*`), all together.
    pub layer_bytes: u64,
    /// The bytes of every other tensor (embeddings, output).
    pub other_bytes: u64,
    /// The f16 KV cache of one token, all layers together, from the attention's shape; 0 when
    /// the file does not say.
    pub kv_bytes_per_token: u64,
}

/// Reads and checks the header of the file at `path`. For the first part of a split model, the
/// other parts (beside it, named as llama.cpp names them) are read too: their tensors count in
/// the parameters and the layout, and a part missing or cut short is an error, as it is to
/// llama.cpp.
pub fn read(path: &Path) -> Result<Header, GgufError> {
    let mut header = parse(&mut open(path)?)?;
    if header.parts > 1 {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some((prefix, 1, n)) =
            crate::catalog::split_of_file_name(name).filter(|(_, _, n)| *n == header.parts as usize)
        else {
            return Err(GgufError::Malformed("a split model's first part is not named -00001-of-N.gguf"));
        };
        for k in 2..=n {
            let t = part_tensors(&mut open(&path.with_file_name(crate::catalog::split_file_name(prefix, k, n)))?)?;
            header.facts.parameters = header.facts.parameters.saturating_add(t.parameters);
            header.layout.layer_bytes = header.layout.layer_bytes.saturating_add(t.layer_bytes);
            header.layout.other_bytes = header.layout.other_bytes.saturating_add(t.all_bytes - t.layer_bytes);
        }
    }
    Ok(header)
}

fn open(path: &Path) -> Result<Reader<BufReader<File>>, GgufError> {
    let file = File::open(path).map_err(GgufError::Io)?;
    let len = file.metadata().map_err(GgufError::Io)?.len();
    Ok(Reader { inner: BufReader::with_capacity(256 * 1024, file), pos: 0, len })
}

/// Reads the header from the first bytes of a file of `file_len` bytes (the answer to a Range
/// request: the hub's files are checked before they are downloaded). `Ok(None)` when `prefix`
/// ends before the header does: ask for more.
pub fn read_prefix(prefix: &[u8], file_len: u64) -> Result<Option<Header>, GgufError> {
    let mut r = Reader { inner: io::Cursor::new(prefix), pos: 0, len: file_len };
    match parse(&mut r) {
        Err(GgufError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        other => other.map(Some),
    }
}

/// A value of the key-value section, as far as the facts need it.
enum Value {
    Int(u64),
    Str(String),
    Other,
}

struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    /// Fails with `Truncated` when fewer than `n` bytes are left.
    fn need(&self, n: u64) -> Result<(), GgufError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            Some(end) => Err(GgufError::Truncated { needed: end, actual: self.len }),
            None => Err(GgufError::Malformed("a length overflows")),
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        self.need(N as u64)?;
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(GgufError::Io)?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        self.need(n)?;
        let step = i64::try_from(n).map_err(|_| GgufError::Malformed("a length overflows"))?;
        self.inner.seek(SeekFrom::Current(step)).map_err(GgufError::Io)?;
        self.pos += n;
        Ok(())
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.u64()?;
        if n > MAX_STRING {
            return Err(GgufError::Malformed("a string is longer than 16 MiB"));
        }
        self.need(n)?;
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf).map_err(GgufError::Io)?;
        self.pos += n;
        String::from_utf8(buf).map_err(|_| GgufError::Malformed("a string is not UTF-8"))
    }

    /// Reads a value of GGUF type `ty`; arrays are skipped.
    fn value(&mut self, ty: u32, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            0 | 1 | 7 => Value::Int(u64::from(self.bytes::<1>()?[0])),
            2 | 3 => Value::Int(u64::from(u16::from_le_bytes(self.bytes()?))),
            4 | 5 => Value::Int(u64::from(self.u32()?)),
            6 => {
                self.skip(4)?;
                Value::Other
            }
            10 | 11 => Value::Int(self.u64()?),
            12 => {
                self.skip(8)?;
                Value::Other
            }
            8 => Value::Str(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::Malformed("arrays nested too deep"));
                }
                let item = self.u32()?;
                let count = self.u64()?;
                match fixed_size(item) {
                    Some(size) => {
                        self.skip(count.checked_mul(size).ok_or(GgufError::Malformed("a length overflows"))?)?
                    }
                    None => {
                        // Strings or nested arrays: each at least 8 bytes, so a bogus count runs
                        // out of file quickly instead of looping for long.
                        self.need(count.saturating_mul(8))?;
                        for _ in 0..count {
                            if item == 8 {
                                let n = self.u64()?;
                                self.skip(n)?;
                            } else {
                                self.value(item, depth + 1)?;
                            }
                        }
                    }
                }
                Value::Other
            }
            _ => return Err(GgufError::Malformed("unknown value type")),
        })
    }
}

/// Byte size of a fixed-size GGUF value type.
fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// (elements per block, bytes per block) of a ggml tensor type; `None` for types this table
/// does not know, whose size then goes unchecked.
fn block(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 | 30 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        20 => (32, 18),
        21 => (256, 110),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 | 28 => (1, 8),
        29 => (256, 56),
        34 => (256, 54),
        35 => (256, 66),
        39 => (32, 17),
        _ => return None,
    })
}

/// llama.cpp's name for a `general.file_type` (`enum llama_ftype`).
fn file_type_name(ft: u64) -> String {
    let name = match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return format!("type {ft}"),
    };
    name.to_string()
}

/// The magic, the version, and the tensor and key-value counts.
fn start<R: Read + Seek>(r: &mut Reader<R>) -> Result<(u32, u64, u64), GgufError> {
    if r.len < 4 || &r.bytes::<4>()? != MAGIC {
        return Err(GgufError::NotGguf);
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    // Each tensor-table entry and key-value pair takes at least 20 bytes.
    r.need(tensors.saturating_add(kvs).saturating_mul(20))?;
    Ok((version, tensors, kvs))
}

/// What the tensor table adds up to.
#[derive(Default)]
struct Tensors {
    parameters: u64,
    layer_bytes: u64,
    all_bytes: u64,
}

/// Reads `tensors` entries of the tensor table and checks the file holds their data.
fn tensor_table<R: Read + Seek>(r: &mut Reader<R>, tensors: u64, alignment: u64) -> Result<(Tensors, u64), GgufError> {
    let mut t = Tensors::default();
    let mut data_len = 0u64;
    for _ in 0..tensors {
        let name = r.string()?;
        let dims = r.u32()?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(GgufError::Malformed("a tensor has an impossible shape"));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements.checked_mul(r.u64()?).ok_or(GgufError::Malformed("a tensor is impossibly large"))?;
        }
        let ty = r.u32()?;
        let offset = r.u64()?;
        t.parameters = t.parameters.saturating_add(elements);
        let bytes = block(ty).map_or(0, |(per, size)| elements.div_ceil(per).saturating_mul(size));
        data_len = data_len.max(offset.saturating_add(bytes));
        t.all_bytes = t.all_bytes.saturating_add(bytes);
        if name.starts_with("blk.") {
            t.layer_bytes = t.layer_bytes.saturating_add(bytes);
        }
    }
    let data_start = r.pos.div_ceil(alignment).saturating_mul(alignment);
    let needed_len = data_start.saturating_add(data_len);
    if needed_len > r.len {
        return Err(GgufError::Truncated { needed: needed_len, actual: r.len });
    }
    Ok((t, needed_len))
}

/// The tensors of a later part of a split model (its keys are only `split.*` and perhaps the
/// alignment).
fn part_tensors<R: Read + Seek>(r: &mut Reader<R>) -> Result<Tensors, GgufError> {
    let (_, tensors, kvs) = start(r)?;
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let key = r.string()?;
        let ty = r.u32()?;
        if let ("general.alignment", Value::Int(n)) = (key.as_str(), r.value(ty, 0)?) {
            alignment = n;
        }
    }
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufError::Malformed("the alignment is not a power of two"));
    }
    Ok(tensor_table(r, tensors, alignment)?.0)
}

fn parse<R: Read + Seek>(r: &mut Reader<R>) -> Result<Header, GgufError> {
    let (version, tensors, kvs) = start(r)?;

    let mut architecture = None;
    let mut name = None;
    let mut file_type = None;
    let mut alignment = 32u64;
    let mut chat_template = None;
    let mut numbers = Vec::new();
    for _ in 0..kvs {
        let key = r.string()?;
        let ty = r.u32()?;
        match (key.as_str(), r.value(ty, 0)?) {
            ("general.architecture", Value::Str(s)) => architecture = Some(s),
            ("general.name", Value::Str(s)) => name = Some(s),
            ("general.file_type", Value::Int(n)) => file_type = Some(n),
            ("general.alignment", Value::Int(n)) => alignment = n,
            ("tokenizer.chat_template", Value::Str(s)) => chat_template = Some(s),
            // The architecture's own numbers (context, layers, attention), read once it is known.
            (k, Value::Int(n)) if !k.starts_with("general.") && !k.starts_with("tokenizer.") => numbers.push((key, n)),
            _ => {}
        }
    }
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufError::Malformed("the alignment is not a power of two"));
    }

    let (Tensors { parameters, layer_bytes, all_bytes }, needed_len) = tensor_table(r, tensors, alignment)?;

    let architecture = architecture.ok_or(GgufError::NoArchitecture)?;
    if !ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(GgufError::UnsupportedArchitecture(architecture));
    }
    let number = |what: &str| {
        let key = format!("{architecture}.{what}");
        numbers.iter().find(|(k, _)| *k == key).map(|(_, n)| *n)
    };
    let context_length = number("context_length").unwrap_or(0);
    let layers = number("block_count").unwrap_or(0);
    // Keys and values of every KV head, in f16: llama.cpp's default cache type.
    let kv_bytes_per_token = match (number("embedding_length"), number("attention.head_count")) {
        (Some(embd), Some(heads)) if heads > 0 => {
            let kv_heads = number("attention.head_count_kv").unwrap_or(heads);
            let key = number("attention.key_length").unwrap_or(embd / heads);
            let value = number("attention.value_length").unwrap_or(embd / heads);
            layers.saturating_mul(kv_heads).saturating_mul(key.saturating_add(value)).saturating_mul(2)
        }
        _ => 0,
    };
    let pooling = number("pooling_type").and_then(|n| u32::try_from(n).ok());
    let parts =
        numbers.iter().find(|(k, _)| *k == "split.count").map_or(1, |(_, n)| u32::try_from(*n).unwrap_or(1).max(1));
    let layout = Layout {
        layers: u32::try_from(layers).unwrap_or(0),
        layer_bytes,
        other_bytes: all_bytes - layer_bytes,
        kv_bytes_per_token,
    };
    Ok(Header {
        version,
        facts: ModelFacts {
            architecture,
            name,
            parameters,
            context_length,
            quantization: file_type.map_or_else(|| "unknown".to_string(), file_type_name),
            has_chat_template: chat_template.is_some(),
        },
        chat_template,
        needed_len,
        layout,
        pooling,
        parts,
    })
}

/// Writes a small but complete GGUF file: for tests of this reader and of everything that
/// refuses bad files (an unknown architecture, a truncated model) without shipping one.
pub mod write {
    /// A GGUF v3 file with `architecture`, a context length, a chat template, and one F32
    /// tensor of `elements` weights.
    pub fn minimal(architecture: &str, elements: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes()); // tensors
        out.extend_from_slice(&4u64.to_le_bytes()); // key-value pairs
        string(&mut out, "general.architecture");
        out.extend_from_slice(&8u32.to_le_bytes());
        string(&mut out, architecture);
        string(&mut out, &format!("{architecture}.context_length"));
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&2048u32.to_le_bytes());
        string(&mut out, "general.file_type");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        string(&mut out, "tokenizer.chat_template");
        out.extend_from_slice(&8u32.to_le_bytes());
        string(&mut out, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:");
        string(&mut out, "weights");
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&elements.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // F32
        out.extend_from_slice(&0u64.to_le_bytes()); // offset
        while out.len() % 32 != 0 {
            out.push(0);
        }
        out.extend(std::iter::repeat_n(0u8, elements as usize * 4));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse_bytes(bytes: Vec<u8>) -> Result<Header, GgufError> {
        let len = bytes.len() as u64;
        parse(&mut Reader { inner: Cursor::new(bytes), pos: 0, len })
    }

    #[test]
    fn a_whole_file_gives_its_facts() {
        let h = parse_bytes(write::minimal("llama", 1000)).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.facts.architecture, "llama");
        assert_eq!(h.facts.parameters, 1000);
        assert_eq!(h.facts.context_length, 2048);
        assert_eq!(h.facts.quantization, "F32");
        assert!(h.facts.has_chat_template);
        assert!(h.chat_template.unwrap().contains("messages"));
    }

    #[test]
    fn a_cut_file_is_truncated_wherever_it_is_cut() {
        let whole = write::minimal("llama", 1000);
        for cut in [3, 10, 40, 200, whole.len() - 1] {
            let err = parse_bytes(whole[..cut].to_vec()).unwrap_err();
            assert!(matches!(err, GgufError::Truncated { .. } | GgufError::NotGguf), "cut at {cut}: {err:?}");
        }
    }

    #[test]
    fn other_files_are_named_for_what_is_wrong() {
        assert!(matches!(parse_bytes(b"<html>not a model</html>".to_vec()), Err(GgufError::NotGguf)));
        let mut v9 = write::minimal("llama", 10);
        v9[4] = 9;
        assert!(matches!(parse_bytes(v9), Err(GgufError::UnsupportedVersion(9))));
        assert!(matches!(
            parse_bytes(write::minimal("nosucharch", 10)),
            Err(GgufError::UnsupportedArchitecture(a)) if a == "nosucharch"
        ));
    }

    #[test]
    fn a_huge_announced_length_is_refused_without_allocating() {
        let mut bytes = write::minimal("llama", 10);
        // The first key's length (right after magic, version and the two counts).
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse_bytes(bytes), Err(GgufError::Malformed(_))));
    }
}
