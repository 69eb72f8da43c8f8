import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import { placementConformance } from "../support/placement-conformance.ts";

placementConformance("MemoryPlacement", () => {
  const registry = new MemoryNodeRegistry();
  return { registry, placement: new MemoryPlacement(registry) };
});
