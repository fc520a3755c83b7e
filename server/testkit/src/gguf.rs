//! A real GGUF with another chat template: the test model's weights with Qwen2.5's tool-use
//! template (SmolLM2 speaks ChatML as Qwen does, so the prompt's tokens are ones it knows).
//! The test model's own template has no tools; this is how tool calls are tested end to end
//! without a second multi-gigabyte model.

use std::path::PathBuf;

/// Qwen2.5-Instruct's chat template (tools in `<tools>`, calls in `<tool_call>`).
pub const QWEN_TOOLS_TEMPLATE: &str = include_str!("../../../src/brain/testdata/qwen2.5-tools.jinja");
/// Llama 3.1-3.3's way with tools (a call is the whole reply, `{"name", "parameters"}`) in
/// ChatML's framing.
pub const LLAMA3_TOOLS_TEMPLATE: &str = include_str!("../../../src/brain/testdata/llama3-tools-chatml.jinja");

/// The test model with [`QWEN_TOOLS_TEMPLATE`].
pub fn tools_model_path() -> PathBuf {
    with_template_path(QWEN_TOOLS_TEMPLATE)
}

/// The test model with [`LLAMA3_TOOLS_TEMPLATE`].
pub fn llama3_tools_model_path() -> PathBuf {
    with_template_path(LLAMA3_TOOLS_TEMPLATE)
}

/// The test model with `template`, written once per machine under the temp folder (atomically:
/// test processes running side by side each see a whole file).
fn with_template_path(template: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("localbrain-testkit");
    let path = dir.join(format!("smollm2-tools-{}.gguf", &crate::sha256_hex(template.as_bytes())[..12]));
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("temp folder");
    let src = std::fs::read(crate::test_model_path()).expect("the test model");
    let out = with_chat_template(&src, template).expect("the test model is a GGUF");
    let tmp = dir.join(format!("{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, out).expect("write the tools model");
    std::fs::rename(&tmp, &path).expect("install the tools model");
    path
}

/// `gguf` with its `tokenizer.chat_template` set to `template` (added when absent). The tensor
/// data is copied as it is: tensor offsets count from the data section, which stays aligned.
pub fn with_chat_template(gguf: &[u8], template: &str) -> Result<Vec<u8>, String> {
    let mut r = Reader { b: gguf, at: 0 };
    if r.take(4)? != b"GGUF" {
        return Err("not a GGUF file".into());
    }
    let version = r.u32()?;
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    let mut out = Vec::with_capacity(gguf.len() + template.len());
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&tensors.to_le_bytes());
    let mut body = Vec::new();
    let mut count = 0u64;
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let start = r.at;
        let key = r.string()?;
        let kind = r.u32()?;
        if key == "general.alignment" && kind == 4 {
            alignment = u64::from(r.u32()?);
        } else {
            r.skip_value(kind)?;
        }
        if key == "tokenizer.chat_template" {
            continue;
        }
        body.extend_from_slice(&gguf[start..r.at]);
        count += 1;
    }
    put_string(&mut body, "tokenizer.chat_template");
    body.extend_from_slice(&8u32.to_le_bytes());
    put_string(&mut body, template);
    count += 1;
    let infos_start = r.at;
    for _ in 0..tensors {
        r.string()?;
        let dims = r.u32()?;
        r.take(8 * dims as usize + 4 + 8)?;
    }
    let infos = &gguf[infos_start..r.at];
    let data_start = r.at.div_ceil(alignment as usize) * alignment as usize;
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(infos);
    out.resize(out.len().div_ceil(alignment as usize) * alignment as usize, 0);
    out.extend_from_slice(gguf.get(data_start..).ok_or("the file ends before its tensor data")?);
    Ok(out)
}

/// `gguf` cut into `n` files the way llama.cpp's `gguf-split` cuts one: the tensors shared out
/// in order, every part a GGUF of its own with `split.no` (u16, from 0), `split.count` (u16)
/// and `split.tensors.count` (i32), the first part also with every key of the original. What
/// llama.cpp's split loader reads, found by the names [`localbrain::catalog::split_file_name`]
/// gives the parts. Tensor data is copied as it is, padding included, so it stays aligned.
pub fn split(gguf: &[u8], n: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut r = Reader { b: gguf, at: 0 };
    if r.take(4)? != b"GGUF" {
        return Err("not a GGUF file".into());
    }
    let version = r.u32()?;
    let tensors = r.u64()? as usize;
    let kvs = r.u64()?;
    let kv_start = r.at;
    let (mut alignment, mut alignment_kv) = (32usize, None);
    for _ in 0..kvs {
        let start = r.at;
        let key = r.string()?;
        let kind = r.u32()?;
        if key == "general.alignment" && kind == 4 {
            alignment = r.u32()? as usize;
            alignment_kv = Some(&gguf[start..r.at]);
        } else {
            r.skip_value(kind)?;
        }
    }
    let all_kvs = &gguf[kv_start..r.at];
    // Each tensor: its name and shape as written, and where its data starts.
    let mut infos: Vec<(&[u8], u64)> = Vec::with_capacity(tensors);
    for _ in 0..tensors {
        let start = r.at;
        r.string()?;
        let dims = r.u32()?;
        r.take(8 * dims as usize + 4)?;
        let head = &gguf[start..r.at];
        infos.push((head, r.u64()?));
    }
    let data = gguf.get(r.at.div_ceil(alignment) * alignment..).ok_or("the file ends before its tensor data")?;
    // A tensor's bytes run to the next one's start (its padding with it), the last one's to the end.
    let mut starts: Vec<u64> = infos.iter().map(|(_, o)| *o).collect();
    starts.sort_unstable();
    let end_of = |o: u64| starts.iter().find(|s| **s > o).copied().unwrap_or(data.len() as u64);
    let per = tensors.div_ceil(n);
    let chunks: Vec<&[(&[u8], u64)]> = infos.chunks(per.max(1)).collect();
    if n < 2 || chunks.len() != n {
        return Err(format!("{tensors} tensors cannot be cut into {n} parts"));
    }
    let mut parts = Vec::with_capacity(n);
    for (k, chunk) in chunks.iter().enumerate() {
        let mut kv = Vec::new();
        let mut count = 3u64;
        if k == 0 {
            kv.extend_from_slice(all_kvs);
            count += kvs;
        } else if let Some(a) = alignment_kv {
            kv.extend_from_slice(a);
            count += 1;
        }
        for (key, kind, value) in [
            ("split.no", 2u32, (k as u16).to_le_bytes().to_vec()),
            ("split.count", 2, (n as u16).to_le_bytes().to_vec()),
            ("split.tensors.count", 5, (tensors as i32).to_le_bytes().to_vec()),
        ] {
            put_string(&mut kv, key);
            kv.extend_from_slice(&kind.to_le_bytes());
            kv.extend_from_slice(&value);
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&kv);
        let mut offset = 0u64;
        for (head, start) in chunk.iter() {
            out.extend_from_slice(head);
            out.extend_from_slice(&offset.to_le_bytes());
            offset += end_of(*start) - start;
        }
        out.resize(out.len().div_ceil(alignment) * alignment, 0);
        for (_, start) in chunk.iter() {
            out.extend_from_slice(&data[*start as usize..end_of(*start) as usize]);
        }
        parts.push(out);
    }
    Ok(parts)
}

/// The test model cut into `n` parts ([`split`]), each written once per machine under the temp
/// folder, atomically: the parts' paths, named as llama.cpp's loader looks for them.
pub fn split_model_paths(n: usize) -> Vec<PathBuf> {
    let dir = std::env::temp_dir().join("localbrain-testkit").join(format!("split-{n}"));
    let paths: Vec<PathBuf> =
        (1..=n).map(|k| dir.join(localbrain::catalog::split_file_name("smollm2-split", k, n))).collect();
    if paths.iter().all(|p| p.is_file()) {
        return paths;
    }
    std::fs::create_dir_all(&dir).expect("temp folder");
    let src = std::fs::read(crate::test_model_path()).expect("the test model");
    for (part, path) in split(&src, n).expect("the test model splits").iter().zip(&paths) {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, part).expect("write a part");
        std::fs::rename(&tmp, path).expect("install a part");
    }
    paths
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("the GGUF header is cut short")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    /// Skips one value of GGUF type `kind`.
    fn skip_value(&mut self, kind: u32) -> Result<(), String> {
        match kind {
            0 | 1 | 7 => self.take(1).map(drop),
            2 | 3 => self.take(2).map(drop),
            4..=6 => self.take(4).map(drop),
            10..=12 => self.take(8).map(drop),
            8 => self.string().map(drop),
            9 => {
                let inner = self.u32()?;
                let n = self.u64()?;
                for _ in 0..n {
                    self.skip_value(inner)?;
                }
                Ok(())
            }
            other => Err(format!("unknown GGUF value type {other}")),
        }
    }
}
