//! A real GGUF with another chat template: the test model's weights with Qwen2.5's tool-use
//! template (SmolLM2 speaks ChatML as Qwen does, so the prompt's tokens are ones it knows).
//! The test model's own template has no tools; this is how tool calls are tested end to end
//! without a second multi-gigabyte model.

use std::path::PathBuf;

/// Qwen2.5-Instruct's chat template (tools in `<tools>`, calls in `<tool_call>`).
pub const QWEN_TOOLS_TEMPLATE: &str = include_str!("../../../src/brain/testdata/qwen2.5-tools.jinja");

/// The test model with [`QWEN_TOOLS_TEMPLATE`], written once per machine under the temp folder
/// (atomically: test processes running side by side each see a whole file).
pub fn tools_model_path() -> PathBuf {
    let dir = std::env::temp_dir().join("localbrain-testkit");
    let path = dir.join(format!("smollm2-tools-{}.gguf", &crate::sha256_hex(QWEN_TOOLS_TEMPLATE.as_bytes())[..12]));
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("temp folder");
    let src = std::fs::read(crate::test_model_path()).expect("the test model");
    let out = with_chat_template(&src, QWEN_TOOLS_TEMPLATE).expect("the test model is a GGUF");
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
