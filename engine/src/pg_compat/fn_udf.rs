//! A scalar function defined by a closure, for the small PostgreSQL
//! compatibility functions whose behaviour depends on session or server state.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

type Body = dyn Fn(&ScalarFunctionArgs) -> Result<ColumnarValue> + Send + Sync;

/// A scalar UDF whose body is a closure. Two instances are equal when their
/// names are: a session holds one instance per name.
pub struct FnUdf {
    name: &'static str,
    signature: Signature,
    return_type: DataType,
    body: Arc<Body>,
}

impl FnUdf {
    pub fn udf(
        name: &'static str,
        signature: Signature,
        return_type: DataType,
        body: impl Fn(&ScalarFunctionArgs) -> Result<ColumnarValue> + Send + Sync + 'static,
    ) -> ScalarUDF {
        ScalarUDF::new_from_impl(FnUdf {
            name,
            signature,
            return_type,
            body: Arc::new(body),
        })
    }

    /// A function of no arguments.
    pub fn nullary(
        name: &'static str,
        return_type: DataType,
        volatility: Volatility,
        body: impl Fn(&ScalarFunctionArgs) -> Result<ColumnarValue> + Send + Sync + 'static,
    ) -> ScalarUDF {
        Self::udf(name, Signature::nullary(volatility), return_type, body)
    }
}

impl fmt::Debug for FnUdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnUdf").field("name", &self.name).finish()
    }
}

impl PartialEq for FnUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for FnUdf {}

impl Hash for FnUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for FnUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        (self.body)(&args)
    }
}
