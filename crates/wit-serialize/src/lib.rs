//! `#[derive(WitSerialize)]`: `serde::Serialize` for the types `wasmtime::component::bindgen!`
//! generates from WIT, so that a host can print them with the names WIT uses.
//!
//! Use it through the bindings generator, which puts it on every record, enum and variant:
//!
//! ```ignore
//! wasmtime::component::bindgen!({
//!     path: "../wit",
//!     additional_derives: [d365meta_wit_serialize::WitSerialize],
//! });
//! ```
//!
//! Why not `serde::Serialize` itself: serde's derive learns how to name enum cases only from
//! `#[serde(...)]` attributes on the type, and the bindings generator adds derives, never
//! attributes. The WIT names are already there, though, in the `#[component(name = "...")]`
//! attributes wasmtime's own derives read; this derive reads them too.
//!
//! The output, shown as JSON:
//! - a record is a struct keyed by the Rust field names (`label_id`), in declaration order;
//! - an `enum` (only unit cases) is a string holding the case's WIT name (`"entities-only"`);
//! - a `variant` is tagged with its WIT case name under `kind`: a unit case is `{"kind": "detect"}`,
//!   a case whose payload serializes as a struct or map has the payload's fields beside the tag
//!   (`{"kind": "referential", "property": ...}`), and any other payload goes under `value`
//!   (`{"kind": "labels", "value": "en-us"}`). So does a struct payload whose first field is
//!   itself named `kind`, a nested variant for one (`{"kind": "outer", "value": {"kind": ...}}`);
//!   one with a `kind` field further on fails to serialize rather than print the key twice.
//!
//! Whether a payload is a struct is decided at run time, by the payload's own `Serialize` impl
//! (see `variant_helpers` in the source): the generated code needs nothing but `::serde`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Error, Expr, ExprLit, Fields, Ident, Lit, Meta, Token, Variant, parse_macro_input, parse_quote};

/// Derives `serde::Serialize` with WIT's case names; see the crate documentation for the output.
///
/// The `component` attribute is declared only so that the derive also compiles where wasmtime's
/// own derives are absent (tests); it is wasmtime's, and only `#[component(name = "...")]` on enum
/// cases is read.
#[proc_macro_derive(WitSerialize, attributes(component))]
pub fn derive_wit_serialize(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(Error::into_compile_error).into()
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let name = ident.unraw().to_string();
    let (helpers, body) = match &input.data {
        Data::Struct(data) => (quote!(), record_body(&name, &data.fields)?),
        Data::Enum(data) => enum_body(&name, data.variants.iter())?,
        Data::Union(_) => {
            return Err(Error::new_spanned(ident, format!("WitSerialize cannot serialize `{name}`: it is a union, and WIT has no unions")));
        }
    };

    // bindgen! only generates lifetime parameters; bound type parameters anyway, as serde does.
    let mut generics = input.generics.clone();
    let type_params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    let where_clause = generics.make_where_clause();
    for param in type_params {
        where_clause.predicates.push(parse_quote!(#param: ::serde::Serialize));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    Ok(quote! {
        const _: () = {
            #helpers

            #[automatically_derived]
            impl #impl_generics ::serde::Serialize for #ident #ty_generics #where_clause {
                fn serialize<__S: ::serde::Serializer>(
                    &self,
                    __serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    #body
                }
            }
        };
    })
}

fn record_body(name: &str, fields: &Fields) -> syn::Result<TokenStream2> {
    let fields = match fields {
        Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
        Fields::Unit => Vec::new(),
        Fields::Unnamed(unnamed) => {
            return Err(Error::new_spanned(
                unnamed,
                format!(
                    "WitSerialize cannot serialize `{name}`: it is a tuple struct, whose fields \
                     have no names to use as keys (WIT records become structs with named fields)"
                ),
            ));
        }
    };
    let len = fields.len();
    let writes = fields.iter().filter_map(|field| field.ident.as_ref()).map(|ident| {
        let key = ident.unraw().to_string();
        quote! {
            ::serde::ser::SerializeStruct::serialize_field(&mut __state, #key, &self.#ident)?;
        }
    });
    Ok(quote! {
        let mut __state = ::serde::Serializer::serialize_struct(__serializer, #name, #len)?;
        #(#writes)*
        ::serde::ser::SerializeStruct::end(__state)
    })
}

/// Returns the helpers the impl needs (none for an all-unit enum) and the body of `serialize`.
fn enum_body<'a>(name: &str, variants: impl Iterator<Item = &'a Variant>) -> syn::Result<(TokenStream2, TokenStream2)> {
    let mut units = Vec::new();
    let mut payloads = Vec::new();
    for variant in variants {
        let case = wit_name(variant)?;
        let ident = &variant.ident;
        match &variant.fields {
            Fields::Unit => units.push((ident, case)),
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => payloads.push((ident, case)),
            fields => {
                return Err(Error::new_spanned(
                    variant,
                    format!(
                        "WitSerialize cannot serialize `{name}`: case `{ident}` has {}; a WIT \
                         variant case carries no payload or exactly one, as `{ident}(T)`",
                        match fields {
                            Fields::Named(_) => "named fields".to_string(),
                            _ => format!("{} fields", fields.len()),
                        }
                    ),
                ));
            }
        }
    }

    if units.is_empty() && payloads.is_empty() {
        // No value exists, so nothing is serialized (and nothing after the match is reachable).
        return Ok((quote!(), quote!(match *self {})));
    }
    if payloads.is_empty() {
        let arms = units.iter().map(|(ident, case)| quote!(Self::#ident => #case,));
        return Ok((
            quote!(),
            quote! {
                let __case: &'static str = match *self { #(#arms)* };
                ::serde::Serializer::serialize_str(__serializer, __case)
            },
        ));
    }

    let unit_arms = units.iter().map(|(ident, case)| quote!(Self::#ident => __wit_variant::unit(__serializer, #name, #case),));
    let payload_arms = payloads
        .iter()
        .map(|(ident, case)| quote!(Self::#ident(ref __payload) => __wit_variant::payload(__serializer, #name, #case, __payload),));
    Ok((
        variant_helpers(),
        quote! {
            match *self {
                #(#unit_arms)*
                #(#payload_arms)*
            }
        },
    ))
}

/// The case's WIT name: wasmtime puts it in `#[component(name = "...")]` on every case; without
/// one, the identifier in kebab case, which is how wasmtime turned the WIT name into it.
fn wit_name(variant: &Variant) -> syn::Result<String> {
    for attr in &variant.attrs {
        if !attr.path().is_ident("component") {
            continue;
        }
        let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for meta in metas {
            if let Meta::NameValue(pair) = meta
                && pair.path.is_ident("name")
            {
                return match pair.value {
                    Expr::Lit(ExprLit { lit: Lit::Str(name), .. }) => Ok(name.value()),
                    value => Err(Error::new_spanned(value, "WitSerialize expects `#[component(name = \"...\")]` to hold a string")),
                };
            }
        }
    }
    Ok(kebab_case(&variant.ident.unraw().to_string()))
}

/// `EntitiesOnly` → `entities-only`, `Http2Version` → `http2-version`.
fn kebab_case(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 4);
    for c in ident.chars() {
        if c == '_' {
            out.push('-');
            continue;
        }
        if c.is_uppercase() && !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Run-time code for WIT variants, emitted into each variant's impl because a proc-macro crate
/// cannot export anything but macros.
///
/// To learn whether a payload is a struct or a map, the payload is serialized into `Probe`, a
/// `Serializer` that wraps the real one, so nothing is buffered:
/// - `serialize_struct` / `serialize_map` mean the payload's fields can sit beside the tag: the
///   real struct or map is opened with one more field, `kind` written first, and the payload's own
///   fields passed straight through;
/// - every other method means they cannot: the probe writes `{kind, value}` to the real
///   serializer, with the whole payload (not the pieces the probe was given, which a sequence
///   hands out one by one) as `value`, and answers the payload's remaining calls with `Done`, which
///   ignores them and returns the real result. A list payload is thus walked twice: once by the
///   probe, without serializing its elements, and once for real.
///
/// A struct payload whose first field is itself `kind` (a nested variant) goes under `value` too,
/// which is why the real struct is opened only when the first field arrives.
fn variant_helpers() -> TokenStream2 {
    quote! {
        // A variant without unit cases leaves `unit` unused (one without payloads gets no helpers).
        #[allow(dead_code)]
        mod __wit_variant {
            use ::core::marker::{PhantomData, Sized};
            use ::core::mem;
            use ::core::option::Option;
            use ::core::result::Result::{self, Err, Ok};
            use ::serde::ser::{self, Serialize, SerializeMap, SerializeStruct, Serializer};

            const TAG: &str = "kind";
            const VALUE: &str = "value";

            pub(super) fn unit<S: Serializer>(
                serializer: S,
                enum_name: &'static str,
                case: &'static str,
            ) -> Result<S::Ok, S::Error> {
                let mut state = serializer.serialize_struct(enum_name, 1)?;
                state.serialize_field(TAG, case)?;
                state.end()
            }

            pub(super) fn payload<S: Serializer, P: ?Sized + Serialize>(
                serializer: S,
                enum_name: &'static str,
                case: &'static str,
                payload: &P,
            ) -> Result<S::Ok, S::Error> {
                payload.serialize(Probe { serializer, enum_name, case, payload })
            }

            struct Probe<'p, S, P: ?Sized> {
                serializer: S,
                enum_name: &'static str,
                case: &'static str,
                payload: &'p P,
            }

            impl<S: Serializer, P: ?Sized + Serialize> Probe<'_, S, P> {
                fn beside_value(self) -> Result<S::Ok, S::Error> {
                    let mut state = self.serializer.serialize_struct(self.enum_name, 2)?;
                    state.serialize_field(TAG, self.case)?;
                    state.serialize_field(VALUE, self.payload)?;
                    state.end()
                }

                fn done(self) -> Result<Done<S::Ok, S::Error>, S::Error> {
                    self.beside_value().map(|ok| Done { ok, error: PhantomData })
                }
            }

            macro_rules! not_a_map {
                ($($method:ident($($arg:ty),*);)*) => {$(
                    fn $method(self $(, _: $arg)*) -> Result<S::Ok, S::Error> {
                        self.beside_value()
                    }
                )*};
            }

            macro_rules! not_a_map_compound {
                ($($method:ident($($arg:ty),*) -> $compound:ident;)*) => {$(
                    fn $method(self $(, _: $arg)*) -> Result<Self::$compound, S::Error> {
                        self.done()
                    }
                )*};
            }

            impl<'p, S: Serializer, P: ?Sized + Serialize> Serializer for Probe<'p, S, P> {
                type Ok = S::Ok;
                type Error = S::Error;
                type SerializeSeq = Done<S::Ok, S::Error>;
                type SerializeTuple = Done<S::Ok, S::Error>;
                type SerializeTupleStruct = Done<S::Ok, S::Error>;
                type SerializeTupleVariant = Done<S::Ok, S::Error>;
                type SerializeMap = FlatMap<S::SerializeMap>;
                type SerializeStruct = FlatStruct<'p, S, P>;
                type SerializeStructVariant = Done<S::Ok, S::Error>;

                not_a_map! {
                    serialize_bool(bool);
                    serialize_i8(i8);
                    serialize_i16(i16);
                    serialize_i32(i32);
                    serialize_i64(i64);
                    serialize_i128(i128);
                    serialize_u8(u8);
                    serialize_u16(u16);
                    serialize_u32(u32);
                    serialize_u64(u64);
                    serialize_u128(u128);
                    serialize_f32(f32);
                    serialize_f64(f64);
                    serialize_char(char);
                    serialize_str(&str);
                    serialize_bytes(&[u8]);
                    serialize_none();
                    serialize_unit();
                    serialize_unit_struct(&'static str);
                    serialize_unit_variant(&'static str, u32, &'static str);
                }

                not_a_map_compound! {
                    serialize_seq(Option<usize>) -> SerializeSeq;
                    serialize_tuple(usize) -> SerializeTuple;
                    serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
                    serialize_tuple_variant(&'static str, u32, &'static str, usize)
                        -> SerializeTupleVariant;
                    serialize_struct_variant(&'static str, u32, &'static str, usize)
                        -> SerializeStructVariant;
                }

                fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
                    self.beside_value()
                }

                // Formats such as JSON show a newtype as what it wraps, so a newtype around a
                // struct is flattened as the struct would be.
                fn serialize_newtype_struct<T: ?Sized + Serialize>(
                    self,
                    _: &'static str,
                    inner: &T,
                ) -> Result<S::Ok, S::Error> {
                    payload(self.serializer, self.enum_name, self.case, inner)
                }

                fn serialize_newtype_variant<T: ?Sized + Serialize>(
                    self,
                    _: &'static str,
                    _: u32,
                    _: &'static str,
                    _: &T,
                ) -> Result<S::Ok, S::Error> {
                    self.beside_value()
                }

                // Map keys are not checked against `kind`: they may be of any type, and no WIT
                // type serializes as a map.
                fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
                    let mut state =
                        self.serializer.serialize_map(len.and_then(|len| len.checked_add(1)))?;
                    state.serialize_entry(TAG, self.case)?;
                    Ok(FlatMap(state))
                }

                fn serialize_struct(
                    self,
                    name: &'static str,
                    len: usize,
                ) -> Result<Self::SerializeStruct, S::Error> {
                    Ok(FlatStruct::Unopened { probe: self, name, len })
                }

                fn is_human_readable(&self) -> bool {
                    self.serializer.is_human_readable()
                }
            }

            enum FlatStruct<'p, S: Serializer, P: ?Sized> {
                /// No field yet: the first one decides between flattening and `value`.
                Unopened { probe: Probe<'p, S, P>, name: &'static str, len: usize },
                /// The fields go beside the tag.
                Open { state: S::SerializeStruct, case: &'static str },
                /// The payload was written under `value`; its fields are ignored.
                Written(S::Ok),
                /// An earlier call failed.
                Failed,
            }

            impl<S: Serializer, P: ?Sized + Serialize> FlatStruct<'_, S, P> {
                /// Leaves `self` open or written; `first_key` is the payload's first field, if any.
                fn open(&mut self, first_key: Option<&'static str>) -> Result<(), S::Error> {
                    *self = match mem::replace(self, FlatStruct::Failed) {
                        FlatStruct::Unopened { probe, .. } if first_key == Option::Some(TAG) => {
                            FlatStruct::Written(probe.beside_value()?)
                        }
                        FlatStruct::Unopened { probe, name, len } => {
                            let mut state =
                                probe.serializer.serialize_struct(name, len.saturating_add(1))?;
                            state.serialize_field(TAG, probe.case)?;
                            FlatStruct::Open { state, case: probe.case }
                        }
                        opened => opened,
                    };
                    Ok(())
                }
            }

            fn after_error<E: ser::Error>() -> E {
                E::custom("a variant's payload went on serializing after an error")
            }

            impl<S: Serializer, P: ?Sized + Serialize> SerializeStruct for FlatStruct<'_, S, P> {
                type Ok = S::Ok;
                type Error = S::Error;

                fn serialize_field<T: ?Sized + Serialize>(
                    &mut self,
                    key: &'static str,
                    value: &T,
                ) -> Result<(), S::Error> {
                    self.open(Option::Some(key))?;
                    match self {
                        // Two `kind` keys would make the output ambiguous, or invalid JSON, and
                        // the fields before this one are already written.
                        FlatStruct::Open { case, .. } if key == TAG => {
                            Err(ser::Error::custom(::core::format_args!(
                                "case `{}` cannot be tagged with `{}`: its payload has a field of that name",
                                case, TAG,
                            )))
                        }
                        FlatStruct::Open { state, .. } => state.serialize_field(key, value),
                        FlatStruct::Written(_) => Ok(()),
                        _ => Err(after_error()),
                    }
                }

                fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                    self.open(Option::None)?;
                    match self {
                        FlatStruct::Open { state, .. } => state.skip_field(key),
                        FlatStruct::Written(_) => Ok(()),
                        _ => Err(after_error()),
                    }
                }

                fn end(mut self) -> Result<S::Ok, S::Error> {
                    self.open(Option::None)?;
                    match self {
                        FlatStruct::Open { state, .. } => state.end(),
                        FlatStruct::Written(ok) => Ok(ok),
                        _ => Err(after_error()),
                    }
                }
            }

            struct FlatMap<M>(M);

            impl<M: SerializeMap> SerializeMap for FlatMap<M> {
                type Ok = M::Ok;
                type Error = M::Error;

                fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), M::Error> {
                    self.0.serialize_key(key)
                }

                fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), M::Error> {
                    self.0.serialize_value(value)
                }

                fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
                    &mut self,
                    key: &K,
                    value: &V,
                ) -> Result<(), M::Error> {
                    self.0.serialize_entry(key, value)
                }

                fn end(self) -> Result<M::Ok, M::Error> {
                    self.0.end()
                }
            }

            /// The result of a payload already written whole; the calls that would have written
            /// its parts are ignored.
            struct Done<O, E> {
                ok: O,
                error: PhantomData<E>,
            }

            macro_rules! done {
                ($($trait:ident::$method:ident($($key:ty)?);)*) => {$(
                    impl<O, E: ser::Error> ser::$trait for Done<O, E> {
                        type Ok = O;
                        type Error = E;

                        fn $method<T: ?Sized + Serialize>(
                            &mut self,
                            $(_: $key,)?
                            _: &T,
                        ) -> Result<(), E> {
                            Ok(())
                        }

                        fn end(self) -> Result<O, E> {
                            Ok(self.ok)
                        }
                    }
                )*};
            }

            done! {
                SerializeSeq::serialize_element();
                SerializeTuple::serialize_element();
                SerializeTupleStruct::serialize_field();
                SerializeTupleVariant::serialize_field();
                SerializeStructVariant::serialize_field(&'static str);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: &DeriveInput) -> String {
        match expand(input) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn shapes_wit_cannot_produce_are_refused_naming_the_type() {
        let tuple = error_of(&parse_quote!(
            struct Pair(u32, u32);
        ));
        assert!(tuple.contains("`Pair`") && tuple.contains("tuple struct"), "{tuple}");

        let union = error_of(&parse_quote!(union Bits { a: u32, b: f32 }));
        assert!(union.contains("`Bits`") && union.contains("union"), "{union}");

        let several = error_of(&parse_quote!(
            enum Shape {
                Point(u32, u32),
            }
        ));
        assert!(several.contains("`Shape`") && several.contains("`Point`"), "{several}");

        let named = error_of(&parse_quote!(
            enum Shape {
                Dot { x: u32 },
            }
        ));
        assert!(named.contains("`Shape`") && named.contains("named fields"), "{named}");

        let not_a_string = error_of(&parse_quote!(
            enum E {
                #[component(name = 3)]
                A,
            }
        ));
        assert!(not_a_string.contains("string"), "{not_a_string}");
    }

    #[test]
    fn other_component_attributes_are_ignored() {
        let input: DeriveInput = parse_quote! {
            #[component(variant)]
            #[component(wasmtime_crate = ::wasmtime)]
            enum E { #[component(name = "a-b")] A(u32), /** docs */ B }
        };
        assert!(expand(&input).is_ok());
    }

    #[test]
    fn identifiers_fall_back_to_kebab_case() {
        assert_eq!(kebab_case("EntitiesOnly"), "entities-only");
        assert_eq!(kebab_case("Http2Version"), "http2-version");
        assert_eq!(kebab_case("Auto"), "auto");
        assert_eq!(kebab_case("ABC"), "a-b-c");
        assert_eq!(kebab_case("Snake_Case"), "snake-case");
    }
}
