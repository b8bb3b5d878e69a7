import { describe, expect, test } from "bun:test";
import { cardDataIn, cardDataPatterns } from "./card-data.ts";

const patterns = cardDataPatterns({ numbers: ["4000 0000 0000 0002"], cvcs: ["0917"] });
const found = (value: unknown) => cardDataIn(value, patterns);

describe("card data matching", () => {
  test("finds a card number and security code wherever the old orders schema (or a log, a JSON body, an event) put them", () => {
    // main's sagas row: card_number and card_cvc columns, as text.
    expect(found("4000000000000002")).toEqual(["number 4000…0002", "first 12 digits of 4000…0002"]);
    expect(found("0917")).toEqual(["cvc 0917"]);
    expect(found("4000 0000 0000 0002")).toContain("number 4000…0002");
    expect(found("4000-0000-0000-0002")).toContain("number 4000…0002");
    expect(found('{"card":{"number":"4000000000000002","cvc":"0917"}}')).toEqual(["number 4000…0002", "first 12 digits of 4000…0002", "cvc 0917"]);
    expect(found("400000000000****")).toEqual(["first 12 digits of 4000…0002"]);
    // A protobuf string field in an outbox payload: tag byte, length byte, the bytes.
    const payload = new Uint8Array([0x0a, 0x04, ...new TextEncoder().encode("0917"), 0x12, 0x10, ...new TextEncoder().encode("4000000000000002")]);
    expect(found(payload)).toEqual(["number 4000…0002", "first 12 digits of 4000…0002", "cvc 0917"]);
  });

  test("does not fire on UUIDs, hashes, timestamps, amounts or longer digit runs that merely contain the digits", () => {
    for (const innocent of [
      "3f2a0917-0917-4917-8917-a0917b0917c0",
      "e3b0c44298fc1c149afbf4c8996fb0917427ae41e4649b934ca495991b7852b8",
      "2026-09-17 09:17:00.917+00",
      "2026-09-17T09:17:09.170917Z",
      "917",
      "0.0917",
      "10917",
      "09170",
      "14000000000000002",
      "pm_Zk0917xQ",
      "4242",
    ]) {
      expect({ innocent, found: found(innocent) }).toEqual({ innocent, found: [] });
    }
  });
});
