/** `npm run node:image -- --tag v2`: the tag helpers that name the image and its version. */
import { describe, expect, test } from "bun:test";
import { imageTag, withTag } from "../../node/image.ts";

describe("node image tags", () => {
  test("imageTag: the tag of a reference, latest when it has none (a registry port is not a tag)", () => {
    expect(imageTag("fleetgate-node:v2")).toBe("v2");
    expect(imageTag("fleetgate-node")).toBe("latest");
    expect(imageTag("registry:5000/game/node")).toBe("latest");
    expect(imageTag("registry:5000/game/node:1.4")).toBe("1.4");
  });

  test("withTag: the same repository under another tag", () => {
    expect(withTag("fleetgate-node:latest", "v2")).toBe("fleetgate-node:v2");
    expect(withTag("fleetgate-node", "v2")).toBe("fleetgate-node:v2");
    expect(withTag("registry:5000/game/node:1.4", "1.5")).toBe("registry:5000/game/node:1.5");
  });
});
