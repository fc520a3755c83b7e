"""The official OpenAI Python client against a running localbrain, as people's programs use it.

Run by server/tests/api/openai.rs with OPENAI_BASE_URL (http://HOST:PORT/v1), OPENAI_API_KEY (a
key made with `localbrain key add`), LOCALBRAIN_MODEL (an installed model) and
LOCALBRAIN_TOOLS_MODELS (installed models whose templates show tools, one for each call format
localbrain reads, comma-separated) set. What the model says is checked by shape, never by its
words.
"""

import os
import time
import unittest

import json
import math
from typing import Literal

import openai
from pydantic import BaseModel, Field

MODEL = os.environ["LOCALBRAIN_MODEL"]
TOOLS_MODELS = os.environ["LOCALBRAIN_TOOLS_MODELS"].split(",")


def client(**kw):
    # The base URL and the key come from OPENAI_BASE_URL and OPENAI_API_KEY, as in any program.
    return openai.OpenAI(max_retries=0, timeout=120, **kw)


class OfficialClient(unittest.TestCase):
    def test_1_lists_the_installed_models(self):
        ids = [m.id for m in client().models.list()]
        self.assertEqual(sorted(ids), sorted([MODEL, *TOOLS_MODELS]))

    def test_2_a_chat_completion(self):
        c = client().chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            max_tokens=24,
            temperature=0,
        )
        self.assertEqual(c.object, "chat.completion")
        self.assertEqual(c.choices[0].message.role, "assistant")
        self.assertTrue(c.choices[0].message.content.strip())
        self.assertIn(c.choices[0].finish_reason, ("stop", "length"))
        self.assertEqual(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens)
        self.assertGreater(c.usage.completion_tokens, 0)

    def test_3_a_streamed_completion_arrives_in_pieces(self):
        stream = client().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write three sentences about the sea."}],
            max_tokens=48,
            temperature=0,
            stream=True,
        )
        arrivals, text, finish = [], "", None
        for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                arrivals.append(time.monotonic())
                text += delta
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        end = time.monotonic()
        self.assertTrue(text.strip())
        self.assertIn(finish, ("stop", "length"))
        self.assertGreaterEqual(len(arrivals), 2)
        # The first piece came while the rest was still being written.
        self.assertGreater(end - arrivals[0], 0.05)

    def test_4_a_bad_key_is_an_authentication_error(self):
        with self.assertRaises(openai.AuthenticationError):
            client(api_key="lb-" + "0" * 64).models.list()

    def test_5_an_unknown_model_is_not_found(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            client().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
        self.assertIn("localbrain download", str(caught.exception))

    def test_6_embeddings_of_one_input_and_of_many(self):
        one = client().embeddings.create(model=MODEL, input="The cat sat on the mat.")
        self.assertEqual(len(one.data), 1)
        vector = one.data[0].embedding
        self.assertGreater(len(vector), 100)
        self.assertAlmostEqual(math.sqrt(sum(x * x for x in vector)), 1.0, places=3)
        self.assertGreater(one.usage.prompt_tokens, 0)
        texts = ["first", "second text", "a third, longer piece of text"]
        many = client().embeddings.create(model=MODEL, input=texts)
        self.assertEqual([d.index for d in many.data], [0, 1, 2])
        self.assertTrue(all(len(d.embedding) == len(vector) for d in many.data))
        # The client asks for base64 by default and decodes it: the same numbers as float.
        floats = client().embeddings.create(model=MODEL, input=texts, encoding_format="float")
        for a, b in zip(many.data, floats.data):
            self.assertAlmostEqual(sum(x * y for x, y in zip(a.embedding, b.embedding)), 1.0, places=4)

    def test_7_legacy_completions_whole_and_streamed(self):
        c = client().completions.create(model=MODEL, prompt="def add(a, b):\n    ", max_tokens=12, temperature=0, logprobs=2)
        self.assertEqual(c.object, "text_completion")
        choice = c.choices[0]
        self.assertTrue(choice.text)
        self.assertIn(choice.finish_reason, ("stop", "length"))
        self.assertEqual("".join(choice.logprobs.tokens), choice.text)
        self.assertTrue(all(len(top) <= 2 for top in choice.logprobs.top_logprobs))
        pieces = list(
            client().completions.create(model=MODEL, prompt="def add(a, b):\n    ", max_tokens=12, temperature=0, stream=True)
        )
        self.assertGreaterEqual(len(pieces), 2)
        self.assertEqual("".join(p.choices[0].text for p in pieces if p.choices), choice.text)

    def test_8_parse_into_a_pydantic_model(self):
        class Pet(BaseModel):
            name: str = Field(max_length=12)
            kind: Literal["cat", "dog", "fish"]
            age: int
            friendly: bool

        c = client().chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Describe a pet."}],
            response_format=Pet,
            max_tokens=120,
            temperature=0,
        )
        pet = c.choices[0].message.parsed
        self.assertIsInstance(pet, Pet)
        self.assertIn(pet.kind, ("cat", "dog", "fish"))
        self.assertLessEqual(len(pet.name), 12)

    def test_9_chat_logprobs(self):
        c = client().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=6,
            temperature=0,
            logprobs=True,
            top_logprobs=3,
        )
        entries = c.choices[0].logprobs.content
        self.assertEqual("".join(e.token for e in entries), c.choices[0].message.content)
        for e in entries:
            self.assertLessEqual(e.logprob, 0.0)
            self.assertEqual(len(e.top_logprobs), 3)
            self.assertAlmostEqual(e.top_logprobs[0].logprob, e.logprob, places=3)

    def test_10_a_tool_call_round_trip(self):
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The current weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "maxLength": 20}},
                        "required": ["city"],
                    },
                },
            }
        ]
        for model in TOOLS_MODELS:
            with self.subTest(model=model):
                messages = [{"role": "user", "content": "What is the weather in Paris?"}]
                c = client().chat.completions.create(
                    model=model, messages=messages, tools=tools, tool_choice="required", temperature=0, max_tokens=100
                )
                self.assertEqual(c.choices[0].finish_reason, "tool_calls")
                call = c.choices[0].message.tool_calls[0]
                self.assertEqual(call.function.name, "get_weather")
                self.assertIsInstance(json.loads(call.function.arguments)["city"], str)
                # The assistant's message goes back as the client returned it, then the tool's result.
                messages.append(c.choices[0].message.model_dump(exclude_none=True))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'})
                reply = client().chat.completions.create(
                    model=model, messages=messages, tools=tools, max_tokens=24, temperature=0
                )
                self.assertIn(reply.choices[0].finish_reason, ("stop", "length", "tool_calls"))
                self.assertTrue(reply.choices[0].message.content or reply.choices[0].message.tool_calls)


if __name__ == "__main__":
    unittest.main()
