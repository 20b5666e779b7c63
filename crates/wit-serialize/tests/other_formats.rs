//! The output through a serializer other than JSON's, which also sees the length hints and type
//! names that JSON ignores.

use d365meta_wit_serialize::WitSerialize;
use serde::ser::{self, Serialize};
use std::fmt;

#[derive(WitSerialize)]
#[component(record)]
pub struct Referential {
    #[component(name = "property")]
    pub property: Option<String>,
    #[component(name = "referenced-property")]
    pub referenced_property: String,
}

#[derive(WitSerialize)]
#[component(enum)]
#[repr(u8)]
pub enum Strategy {
    #[component(name = "entities-only")]
    EntitiesOnly,
}

#[derive(WitSerialize)]
#[component(variant)]
pub enum Constraint {
    #[component(name = "referential")]
    Referential(Referential),
    #[component(name = "ids")]
    Ids(Vec<u8>),
    #[component(name = "none")]
    None,
}

/// Writes what it is asked to serialize as one line of events.
struct Events(String);

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

type Result<T = ()> = std::result::Result<T, Error>;

impl Events {
    fn push(&mut self, event: impl fmt::Display) -> Result {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0 += &event.to_string();
        Ok(())
    }
}

macro_rules! scalars {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method(self, v: $ty) -> Result {
            self.push(format_args!("{v:?}"))
        }
    )*};
}

impl ser::Serializer for &mut Events {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    scalars! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]);
    }

    fn serialize_none(self) -> Result {
        self.push("none")
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result {
        self.push("some")?;
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.push("()")
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result {
        self.push(name)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.push(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, variant: &'static str, v: &T) -> Result {
        self.push(variant)?;
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        self.push(format_args!("seq({len:?})"))?;
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self> {
        self.push(format_args!("tuple({len})"))?;
        Ok(self)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self> {
        self.push(format_args!("{name}({len})"))?;
        Ok(self)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, v: &'static str, len: usize) -> Result<Self> {
        self.push(format_args!("{v}({len})"))?;
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        self.push(format_args!("map({len:?})"))?;
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self> {
        self.push(format_args!("{name}{{{len}}}"))?;
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, v: &'static str, len: usize) -> Result<Self> {
        self.push(format_args!("{v}{{{len}}}"))?;
        Ok(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

macro_rules! compound {
    ($($trait:ident::$method:ident($($key:ident)?);)*) => {$(
        impl ser::$trait for &mut Events {
            type Ok = ();
            type Error = Error;
            fn $method<T: ?Sized + Serialize>(&mut self, $($key: &'static str,)? v: &T) -> Result {
                $(self.push(format_args!("{}:", $key))?;)?
                v.serialize(&mut **self)
            }
            fn end(self) -> Result {
                self.push("end")
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element();
    SerializeTuple::serialize_element();
    SerializeTupleStruct::serialize_field();
    SerializeTupleVariant::serialize_field();
    SerializeStruct::serialize_field(key);
    SerializeStructVariant::serialize_field(key);
}

impl ser::SerializeMap for &mut Events {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result {
        key.serialize(&mut **self)?;
        self.push("=>")
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result {
        self.push("end")
    }
}

fn events<T: Serialize>(value: &T) -> String {
    let mut events = Events(String::new());
    value.serialize(&mut events).expect("serializes");
    events.0
}

#[test]
fn records_enums_and_variants_through_another_serializer() {
    let referential = Referential { property: None, referenced_property: "b".into() };
    assert_eq!(events(&referential), r#"Referential{2} property: none referenced_property: "b" end"#);
    assert_eq!(events(&Strategy::EntitiesOnly), r#""entities-only""#);
    // The tag adds one to the payload's length hint.
    assert_eq!(
        events(&Constraint::Referential(referential)),
        r#"Referential{3} kind: "referential" property: none referenced_property: "b" end"#
    );
    assert_eq!(events(&Constraint::Ids(vec![1, 2])), r#"Constraint{2} kind: "ids" value: seq(Some(2)) 1 2 end end"#);
    assert_eq!(events(&Constraint::None), r#"Constraint{1} kind: "none" end"#);
}
