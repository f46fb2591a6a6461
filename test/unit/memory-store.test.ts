import { MemoryStore } from "../../adapters/memory/memory-store.ts";
import { describeStoreContract } from "../contract/store.contract.ts";

describeStoreContract("MemoryStore", async () => new MemoryStore());
