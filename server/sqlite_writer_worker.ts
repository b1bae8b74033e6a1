// Entry module of the SQLite writer worker (see sqlite_writer.ts); loaded only as a worker.
import { serveSqliteWrites } from "./sqlite_writer.ts";

serveSqliteWrites();
