"""The official OpenAI Python client against a running localbrain, as people's programs use it.

Run by server/tests/api/openai.rs with OPENAI_BASE_URL (http://HOST:PORT/v1), OPENAI_API_KEY (a
key made with `localbrain key add`) and LOCALBRAIN_MODEL (an installed model) set. What the model
says is checked by shape, never by its words.
"""

import os
import time
import unittest

import openai

MODEL = os.environ["LOCALBRAIN_MODEL"]


def client(**kw):
    # The base URL and the key come from OPENAI_BASE_URL and OPENAI_API_KEY, as in any program.
    return openai.OpenAI(max_retries=0, timeout=120, **kw)


class OfficialClient(unittest.TestCase):
    def test_1_lists_the_installed_models(self):
        ids = [m.id for m in client().models.list()]
        self.assertEqual(ids, [MODEL])

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


if __name__ == "__main__":
    unittest.main()
