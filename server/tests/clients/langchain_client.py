"""langchain-openai against a running localbrain, as RAG and agent programs use it.

Run by server/tests/api/openai.rs with OPENAI_BASE_URL, OPENAI_API_KEY and LOCALBRAIN_MODEL set,
like openai_client.py. Shape assertions only, never the model's words.
"""

import math
import os
import unittest

from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field

MODEL = os.environ["LOCALBRAIN_MODEL"]


class LangChain(unittest.TestCase):
    def test_1_openai_embeddings(self):
        # check_embedding_ctx_length=False sends the text itself: by default LangChain tokenizes
        # with OpenAI's tiktoken vocabulary, whose ids mean nothing to a local model (and whose
        # tables it would download).
        embeddings = OpenAIEmbeddings(model=MODEL, check_embedding_ctx_length=False, max_retries=0)
        docs = embeddings.embed_documents(["The cat sat on the mat.", "Stock markets fell.", "A kitten on a rug."])
        self.assertEqual(len(docs), 3)
        self.assertTrue(all(len(d) == len(docs[0]) > 100 for d in docs))
        for d in docs:
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in d)), 1.0, places=3)
        query = embeddings.embed_query("The cat sat on the mat.")
        self.assertAlmostEqual(sum(x * y for x, y in zip(query, docs[0])), 1.0, places=3)

    def test_2_chat_with_structured_output(self):
        class City(BaseModel):
            name: str = Field(max_length=16)
            country: str = Field(max_length=16)
            big: bool

        llm = ChatOpenAI(model=MODEL, temperature=0, max_tokens=100, max_retries=0)
        city = llm.with_structured_output(City, method="json_schema").invoke("Name a city.")
        self.assertIsInstance(city, City)
        self.assertLessEqual(len(city.name), 16)

    def test_3_plain_and_streamed_chat(self):
        llm = ChatOpenAI(model=MODEL, temperature=0, max_tokens=16, max_retries=0)
        reply = llm.invoke("Say hello.")
        self.assertTrue(reply.content.strip())
        self.assertGreater(reply.usage_metadata["output_tokens"], 0)
        pieces = [p.content for p in llm.stream("Say hello.")]
        self.assertGreaterEqual(len([p for p in pieces if p]), 2)
        self.assertEqual("".join(pieces), reply.content)


if __name__ == "__main__":
    unittest.main()
