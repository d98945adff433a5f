import { z } from "zod";
import { parse } from "yaml";
console.log(z.string().parse("x"), parse("a: 1"));
